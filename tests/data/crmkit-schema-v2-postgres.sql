CREATE FUNCTION crmkit_v2_fixture.crmkit_audit_refuse() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'the crmkit audit log is append-only'; END $$;
CREATE TABLE crmkit_v2_fixture.crm_account (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    address__city text COLLATE pg_catalog."C",
    address__country text COLLATE pg_catalog."C",
    address__postal_code text COLLATE pg_catalog."C",
    address__region text COLLATE pg_catalog."C",
    address__street text COLLATE pg_catalog."C",
    annual_revenue__amount numeric,
    annual_revenue__currency text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    domain text COLLATE pg_catalog."C",
    employees bigint,
    industry text COLLATE pg_catalog."C",
    name text COLLATE pg_catalog."C",
    owner_id text COLLATE pg_catalog."C",
    parent_id text COLLATE pg_catalog."C",
    phone text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_activity (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    activity_type text COLLATE pg_catalog."C",
    body text COLLATE pg_catalog."C",
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    direction text COLLATE pg_catalog."C",
    duration_seconds bigint,
    occurred_at timestamp with time zone,
    owner_id text COLLATE pg_catalog."C",
    regarding__id text COLLATE pg_catalog."C",
    regarding__kind text COLLATE pg_catalog."C",
    subject text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_campaign (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    actual_cost__amount numeric,
    actual_cost__currency text COLLATE pg_catalog."C",
    budget__amount numeric,
    budget__currency text COLLATE pg_catalog."C",
    channel text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone,
    name text COLLATE pg_catalog."C",
    owner_id text COLLATE pg_catalog."C",
    starts_at timestamp with time zone,
    status text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    utm_campaign text COLLATE pg_catalog."C",
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_consent (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    captured_at timestamp with time zone,
    channel text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone,
    lawful_basis text COLLATE pg_catalog."C",
    purpose text COLLATE pg_catalog."C",
    source text COLLATE pg_catalog."C",
    status text COLLATE pg_catalog."C",
    subject__id text COLLATE pg_catalog."C",
    subject__kind text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    withdrawn_at timestamp with time zone,
    wording text COLLATE pg_catalog."C",
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_contact (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    address__city text COLLATE pg_catalog."C",
    address__country text COLLATE pg_catalog."C",
    address__postal_code text COLLATE pg_catalog."C",
    address__region text COLLATE pg_catalog."C",
    address__street text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    do_not_contact boolean,
    email text COLLATE pg_catalog."C",
    first_name text COLLATE pg_catalog."C",
    last_name text COLLATE pg_catalog."C",
    owner_id text COLLATE pg_catalog."C",
    phone text COLLATE pg_catalog."C",
    stage text COLLATE pg_catalog."C",
    tags text[],
    timezone text COLLATE pg_catalog."C",
    title text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_feedback (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    comment text COLLATE pg_catalog."C",
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    order_id text COLLATE pg_catalog."C",
    responded_at timestamp with time zone,
    score bigint,
    survey text COLLATE pg_catalog."C",
    tags text[],
    ticket_id text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_lead (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    campaign_id text COLLATE pg_catalog."C",
    company text COLLATE pg_catalog."C",
    converted_account_id text COLLATE pg_catalog."C",
    converted_at timestamp with time zone,
    converted_contact_id text COLLATE pg_catalog."C",
    converted_opportunity_id text COLLATE pg_catalog."C",
    country text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    domain text COLLATE pg_catalog."C",
    email text COLLATE pg_catalog."C",
    employees bigint,
    first_name text COLLATE pg_catalog."C",
    industry text COLLATE pg_catalog."C",
    last_name text COLLATE pg_catalog."C",
    owner_id text COLLATE pg_catalog."C",
    phone text COLLATE pg_catalog."C",
    score bigint,
    source text COLLATE pg_catalog."C",
    stage text COLLATE pg_catalog."C",
    tags text[],
    title text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    utm_campaign text COLLATE pg_catalog."C",
    utm_medium text COLLATE pg_catalog."C",
    utm_source text COLLATE pg_catalog."C",
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_opportunity (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    amount__amount numeric,
    amount__currency text COLLATE pg_catalog."C",
    campaign_id text COLLATE pg_catalog."C",
    closed_at timestamp with time zone,
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    expected_close date,
    lost_reason text COLLATE pg_catalog."C",
    name text COLLATE pg_catalog."C",
    owner_id text COLLATE pg_catalog."C",
    probability numeric,
    stage text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_order (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    campaign_id text COLLATE pg_catalog."C",
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    currency text COLLATE pg_catalog."C",
    number text COLLATE pg_catalog."C",
    ordered_at timestamp with time zone,
    quote_id text COLLATE pg_catalog."C",
    status text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_product (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    active boolean,
    created_at timestamp with time zone NOT NULL,
    description text COLLATE pg_catalog."C",
    family text COLLATE pg_catalog."C",
    list_price__amount numeric,
    list_price__currency text COLLATE pg_catalog."C",
    name text COLLATE pg_catalog."C",
    recurring_interval text COLLATE pg_catalog."C",
    sku text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_quote (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    currency text COLLATE pg_catalog."C",
    number text COLLATE pg_catalog."C",
    opportunity_id text COLLATE pg_catalog."C",
    status text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    valid_until date,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_task (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    completed_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    description text COLLATE pg_catalog."C",
    due_at timestamp with time zone,
    owner_id text COLLATE pg_catalog."C",
    priority text COLLATE pg_catalog."C",
    recurrence text COLLATE pg_catalog."C",
    regarding__id text COLLATE pg_catalog."C",
    regarding__kind text COLLATE pg_catalog."C",
    status text COLLATE pg_catalog."C",
    tags text[],
    title text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_team (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    description text COLLATE pg_catalog."C",
    manager_id text COLLATE pg_catalog."C",
    name text COLLATE pg_catalog."C",
    tags text[],
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_ticket (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    account_id text COLLATE pg_catalog."C",
    channel text COLLATE pg_catalog."C",
    contact_id text COLLATE pg_catalog."C",
    created_at timestamp with time zone NOT NULL,
    description text COLLATE pg_catalog."C",
    first_response_at timestamp with time zone,
    owner_id text COLLATE pg_catalog."C",
    priority text COLLATE pg_catalog."C",
    resolved_at timestamp with time zone,
    stage text COLLATE pg_catalog."C",
    subject text COLLATE pg_catalog."C",
    tags text[],
    team_id text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crm_user (
    id text NOT NULL COLLATE pg_catalog."C",
    version bigint NOT NULL,
    active boolean,
    capacity bigint,
    created_at timestamp with time zone NOT NULL,
    email text COLLATE pg_catalog."C",
    name text COLLATE pg_catalog."C",
    skills text[],
    tags text[],
    team_id text COLLATE pg_catalog."C",
    timezone text COLLATE pg_catalog."C",
    updated_at timestamp with time zone NOT NULL,
    data json NOT NULL
);
CREATE TABLE crmkit_v2_fixture.crmkit_audit (
    seq bigint NOT NULL,
    event_id text NOT NULL COLLATE pg_catalog."C",
    type text NOT NULL COLLATE pg_catalog."C",
    entity_kind text NOT NULL COLLATE pg_catalog."C",
    entity_id text NOT NULL COLLATE pg_catalog."C",
    at timestamp with time zone NOT NULL,
    actor text COLLATE pg_catalog."C",
    data jsonb NOT NULL
);
ALTER TABLE crmkit_v2_fixture.crmkit_audit ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME crmkit_v2_fixture.crmkit_audit_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE crmkit_v2_fixture.crmkit_schema (
    singleton integer NOT NULL,
    version integer NOT NULL,
    CONSTRAINT crmkit_schema_singleton_check CHECK ((singleton = 1))
);
CREATE TABLE crmkit_v2_fixture.crmkit_state (
    namespace text NOT NULL COLLATE pg_catalog."C",
    key text NOT NULL COLLATE pg_catalog."C",
    value text NOT NULL,
    version bigint NOT NULL
);
INSERT INTO crmkit_v2_fixture.crm_contact VALUES ('contact-1', 1, NULL, NULL, NULL, NULL, NULL, NULL, '2026-03-01 09:00:00+00', false, 'hedy@example.com', 'Hedy', NULL, NULL, '+4930123456', 'subscriber', '{}', NULL, NULL, '2026-03-01 09:00:00+00', '{"id":"contact-1","created_at":"2026-03-01T09:00:00+00:00","updated_at":"2026-03-01T09:00:00+00:00","version":1,"tags":[],"custom_fields":{},"first_name":"Hedy","last_name":null,"email":"hedy@example.com","phone":"+4930123456","title":null,"account_id":null,"owner_id":null,"address":null,"timezone":null,"do_not_contact":false,"stage":"subscriber","stage_history":[]}');
INSERT INTO crmkit_v2_fixture.crm_lead VALUES ('lead-1', 1, NULL, 'Analytical Engines', NULL, NULL, NULL, NULL, 'GB', '2026-03-01 09:00:00+00', NULL, 'ada@example.com', NULL, NULL, NULL, NULL, 'u-7', NULL, 0, NULL, 'new', '{}', NULL, '2026-03-01 09:00:00+00', NULL, NULL, NULL, '{"id":"lead-1","created_at":"2026-03-01T09:00:00+00:00","updated_at":"2026-03-01T09:00:00+00:00","version":1,"tags":[],"custom_fields":{},"first_name":null,"last_name":null,"email":"ada@example.com","phone":null,"company":"Analytical Engines","domain":null,"title":null,"country":"GB","industry":null,"employees":null,"source":null,"utm_source":null,"utm_medium":null,"utm_campaign":null,"score":0,"stage":"new","stage_history":[],"owner_id":"u-7","campaign_id":null,"converted_contact_id":null,"converted_account_id":null,"converted_opportunity_id":null,"converted_at":null}');
INSERT INTO crmkit_v2_fixture.crm_lead VALUES ('lead-2', 1, NULL, NULL, NULL, NULL, NULL, NULL, 'US', '2026-03-01 09:00:00+00', NULL, 'grace@example.com', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, 'new', '{}', NULL, '2026-03-01 09:00:00+00', NULL, NULL, NULL, '{"id":"lead-2","created_at":"2026-03-01T09:00:00+00:00","updated_at":"2026-03-01T09:00:00+00:00","version":1,"tags":[],"custom_fields":{},"first_name":null,"last_name":null,"email":"grace@example.com","phone":null,"company":null,"domain":null,"title":null,"country":"US","industry":null,"employees":null,"source":null,"utm_source":null,"utm_medium":null,"utm_campaign":null,"score":0,"stage":"new","stage_history":[],"owner_id":null,"campaign_id":null,"converted_contact_id":null,"converted_account_id":null,"converted_opportunity_id":null,"converted_at":null}');
INSERT INTO crmkit_v2_fixture.crmkit_audit OVERRIDING SYSTEM VALUE VALUES (1, 'f8ba363ae690445db15f0cb7c9983010', 'entity_created', 'lead', 'lead-1', '2026-03-01 09:00:00+00', 'u-1', '{"at": "2026-03-01T09:00:00+00:00", "id": "f8ba363ae690445db15f0cb7c9983010", "type": "entity_created", "actor": "u-1", "entity": {"id": "lead-1", "kind": "lead"}}');
INSERT INTO crmkit_v2_fixture.crmkit_audit OVERRIDING SYSTEM VALUE VALUES (2, 'c48bffd3b03146e7a5836c2dc1efa404', 'entity_created', 'lead', 'lead-2', '2026-03-01 09:00:00+00', 'u-1', '{"at": "2026-03-01T09:00:00+00:00", "id": "c48bffd3b03146e7a5836c2dc1efa404", "type": "entity_created", "actor": "u-1", "entity": {"id": "lead-2", "kind": "lead"}}');
INSERT INTO crmkit_v2_fixture.crmkit_audit OVERRIDING SYSTEM VALUE VALUES (3, 'cfae7b560ccc4dd69ae773c136e109ac', 'entity_created', 'contact', 'contact-1', '2026-03-01 09:00:00+00', 'u-1', '{"at": "2026-03-01T09:00:00+00:00", "id": "cfae7b560ccc4dd69ae773c136e109ac", "type": "entity_created", "actor": "u-1", "entity": {"id": "contact-1", "kind": "contact"}}');
INSERT INTO crmkit_v2_fixture.crmkit_schema VALUES (1, 2);
INSERT INTO crmkit_v2_fixture.crmkit_state VALUES ('routing.turns', 'team-emea', '3', 1);
SELECT pg_catalog.setval('crmkit_v2_fixture.crmkit_audit_seq_seq', 3, true);
ALTER TABLE ONLY crmkit_v2_fixture.crm_account
    ADD CONSTRAINT crm_account_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_activity
    ADD CONSTRAINT crm_activity_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_campaign
    ADD CONSTRAINT crm_campaign_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_consent
    ADD CONSTRAINT crm_consent_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_contact
    ADD CONSTRAINT crm_contact_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_feedback
    ADD CONSTRAINT crm_feedback_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_lead
    ADD CONSTRAINT crm_lead_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_opportunity
    ADD CONSTRAINT crm_opportunity_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_order
    ADD CONSTRAINT crm_order_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_product
    ADD CONSTRAINT crm_product_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_quote
    ADD CONSTRAINT crm_quote_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_task
    ADD CONSTRAINT crm_task_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_team
    ADD CONSTRAINT crm_team_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_ticket
    ADD CONSTRAINT crm_ticket_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crm_user
    ADD CONSTRAINT crm_user_pkey PRIMARY KEY (id);
ALTER TABLE ONLY crmkit_v2_fixture.crmkit_audit
    ADD CONSTRAINT crmkit_audit_event_id_key UNIQUE (event_id);
ALTER TABLE ONLY crmkit_v2_fixture.crmkit_audit
    ADD CONSTRAINT crmkit_audit_pkey PRIMARY KEY (seq);
ALTER TABLE ONLY crmkit_v2_fixture.crmkit_schema
    ADD CONSTRAINT crmkit_schema_pkey PRIMARY KEY (singleton);
ALTER TABLE ONLY crmkit_v2_fixture.crmkit_state
    ADD CONSTRAINT crmkit_state_pkey PRIMARY KEY (namespace, key);
CREATE INDEX crm_account__domain ON crmkit_v2_fixture.crm_account USING btree (domain);
CREATE INDEX crm_account__phone ON crmkit_v2_fixture.crm_account USING btree (phone);
CREATE INDEX crm_activity__account_id ON crmkit_v2_fixture.crm_activity USING btree (account_id);
CREATE INDEX crm_activity__contact_id ON crmkit_v2_fixture.crm_activity USING btree (contact_id);
CREATE INDEX crm_contact__account_id ON crmkit_v2_fixture.crm_contact USING btree (account_id);
CREATE INDEX crm_contact__email ON crmkit_v2_fixture.crm_contact USING btree (email);
CREATE INDEX crm_contact__phone ON crmkit_v2_fixture.crm_contact USING btree (phone);
CREATE INDEX crm_feedback__contact_id ON crmkit_v2_fixture.crm_feedback USING btree (contact_id);
CREATE INDEX crm_lead__domain ON crmkit_v2_fixture.crm_lead USING btree (domain);
CREATE INDEX crm_lead__email ON crmkit_v2_fixture.crm_lead USING btree (email);
CREATE INDEX crm_lead__phone ON crmkit_v2_fixture.crm_lead USING btree (phone);
CREATE INDEX crm_opportunity__account_id ON crmkit_v2_fixture.crm_opportunity USING btree (account_id);
CREATE INDEX crm_opportunity__contact_id ON crmkit_v2_fixture.crm_opportunity USING btree (contact_id);
CREATE INDEX crm_order__account_id ON crmkit_v2_fixture.crm_order USING btree (account_id);
CREATE INDEX crm_order__contact_id ON crmkit_v2_fixture.crm_order USING btree (contact_id);
CREATE INDEX crm_quote__account_id ON crmkit_v2_fixture.crm_quote USING btree (account_id);
CREATE INDEX crm_quote__contact_id ON crmkit_v2_fixture.crm_quote USING btree (contact_id);
CREATE INDEX crm_ticket__account_id ON crmkit_v2_fixture.crm_ticket USING btree (account_id);
CREATE INDEX crm_ticket__contact_id ON crmkit_v2_fixture.crm_ticket USING btree (contact_id);
CREATE INDEX crm_user__email ON crmkit_v2_fixture.crm_user USING btree (email);
CREATE INDEX crmkit_audit__at ON crmkit_v2_fixture.crmkit_audit USING btree (at);
CREATE INDEX crmkit_audit__entity ON crmkit_v2_fixture.crmkit_audit USING btree (entity_kind, entity_id, seq);
CREATE TRIGGER crmkit_audit_append_only BEFORE DELETE OR UPDATE ON crmkit_v2_fixture.crmkit_audit FOR EACH ROW EXECUTE FUNCTION crmkit_v2_fixture.crmkit_audit_refuse();
CREATE TRIGGER crmkit_audit_no_truncate BEFORE TRUNCATE ON crmkit_v2_fixture.crmkit_audit FOR EACH STATEMENT EXECUTE FUNCTION crmkit_v2_fixture.crmkit_audit_refuse();
