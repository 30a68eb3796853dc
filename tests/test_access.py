"""Access policies as data: validation with paths, JSON round trips, and the conditions they make."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.access import AccessPolicy, FieldRestriction, Principal, Role, SharingRule, condition_fields
from crmkit.conditions import Schema, field
from crmkit.entities import Lead, Order
from crmkit.errors import PermissionDenied, RuleError

LEADS = Schema.for_entity(Lead)
ANN = Principal(user_id="ann", role=Role.MEMBER, teams=["de"])
DORA = Principal(user_id="dora", role=Role.MANAGER, teams=["de"], team_members=["ann", "bob"])


def policy(**changes):
    base = {
        "sharing": [SharingRule(name="de", kind="lead", teams=["de"], condition=field("country").eq("DE"))],
        "restricted": [FieldRestriction(kind="lead", field="score", roles=["manager"])],
    }
    return AccessPolicy(**{**base, **changes})


def visible_ids(principal, leads, access=None):
    condition = (access or policy()).visible(principal, Lead)
    if condition is None:
        return [lead.id for lead in leads]
    return [lead.id for lead in leads if LEADS.evaluate(condition, lead)]


def test_members_see_their_own_unowned_and_shared_records():
    leads = [
        Lead(id="mine", email="a@example.com", owner_id="ann"),
        Lead(id="bobs", email="b@example.com", owner_id="bob"),
        Lead(id="bobs-de", email="c@example.com", owner_id="bob", country="DE"),
        Lead(id="queue", email="d@example.com"),
    ]
    assert visible_ids(ANN, leads) == ["mine", "bobs-de", "queue"]
    assert visible_ids(DORA, leads) == ["mine", "bobs", "bobs-de", "queue"]
    assert visible_ids(Principal(user_id="root", role="admin"), leads) == ["mine", "bobs", "bobs-de", "queue"]


def test_a_read_rule_does_not_let_anyone_change_records():
    leads = [Lead(id="bobs-de", email="c@example.com", owner_id="bob", country="DE")]
    writable = policy().writable(ANN, Lead)
    assert writable is not None
    assert not LEADS.evaluate(writable, leads[0])
    granted = policy(sharing=[SharingRule(name="de", kind="lead", teams=["de"], access="write", condition=field("country").eq("DE"))])
    assert LEADS.evaluate(granted.writable(ANN, Lead), leads[0])


def test_read_only_users_change_nothing_and_kinds_without_owner_are_visible():
    viewer = Principal(user_id="v", role=Role.READ_ONLY)
    assert not policy().may_write_kind(viewer, Lead)
    assert policy().visible(ANN, Order) is None
    assert not policy().may_write_kind(ANN, Order)
    assert policy().may_write_kind(DORA, Order)


def test_hidden_fields_depend_on_the_role():
    assert policy().hidden_fields(ANN, "lead") == {"score"}
    assert policy().hidden_fields(DORA, "lead") == frozenset()
    assert policy().hidden_fields(Principal(user_id="r", role="admin"), "lead") == frozenset()


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"sharing": [{"name": "x", "kind": "nope", "condition": {"field": "country", "op": "eq", "value": "DE"}}]}, "sharing[0].kind"),
        ({"sharing": [{"name": "x", "kind": "lead", "condition": {"field": "nope", "op": "eq", "value": "DE"}}]}, "sharing[0].condition"),
        ({"sharing": [{"name": "x", "kind": "lead", "access": "own", "condition": {"field": "country", "op": "eq", "value": "DE"}}]}, "sharing[0].access"),
        ({"sharing": [{"name": "x", "kind": "lead", "roles": ["boss"], "condition": {"field": "country", "op": "eq", "value": "DE"}}]}, "sharing[0]"),
        ({"restricted": [{"kind": "lead", "field": "owner_id", "roles": []}]}, "restricted[0].field"),
        ({"restricted": [{"kind": "lead", "field": "nope", "roles": []}]}, "restricted[0].field"),
        ({"restricted": [{"kind": "opportunity", "field": "name", "roles": []}]}, "restricted[0].field"),
        ({"restricted": {"kind": "lead"}}, "restricted"),
        ({"other": []}, "other"),
    ],
)
def test_bad_policies_are_rule_errors_pointing_at_the_node(document, path):
    with pytest.raises(RuleError) as caught:
        AccessPolicy.from_json(document)
    assert caught.value.path.startswith(path)


def test_rule_names_are_unique():
    rule = SharingRule(name="de", kind="lead", condition=field("country").eq("DE"))
    with pytest.raises(RuleError, match="twice"):
        AccessPolicy(sharing=[rule, rule])


@given(
    st.lists(st.sampled_from(["DE", "FR", "GB"]), min_size=0, max_size=3, unique=True),
    st.sets(st.sampled_from(list(Role))),
    st.sampled_from(["read", "write"]),
    st.booleans(),
)
def test_policies_round_trip_through_json(countries, roles, access, hide_notes):
    rules = [
        SharingRule(name=f"r{n}", kind="lead", roles=roles, access=access, condition=field("country").eq(country))
        for n, country in enumerate(countries)
    ]
    restricted = [FieldRestriction(kind="contact", field="custom_fields.notes", roles=roles)] if hide_notes else []
    original = AccessPolicy(sharing=rules, restricted=restricted)
    again = AccessPolicy.from_json(json.loads(json.dumps(original.to_json())))
    assert again == original
    assert again.to_json() == original.to_json()


def test_condition_fields_lists_every_field_read():
    condition = field("a").eq(1) & ~(field("b").gt(2) | field("c").exists())
    assert list(condition_fields(condition)) == ["a", "b", "c"]


def test_a_principal_needs_a_user():
    with pytest.raises(RuleError, match="user"):
        Principal(user_id=" ", role="member")


def test_permission_denied_carries_what_was_refused():
    error = PermissionDenied("update", "lead", "l-1", "a member may not change this record")
    assert (error.action, error.kind, error.id) == ("update", "lead", "l-1")
    assert "may not update lead 'l-1'" in str(error)
