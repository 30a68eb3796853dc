"""Lifecycles: the stages a record moves through, as data, and pure transitions between them.

A :class:`Lifecycle` is an immutable definition: stages (each open, won, lost or
closed, with a probability and forecast category for deals), named transitions with
guards in the condition language and required fields, a policy for moving backwards,
and terminal stages. It is checked when it is built and converts to JSON and back.

A record carries its stage as a plain field and an append-only stage history;
applying a transition is a pure function returning the new record and a
:class:`~crmkit.events.StageChanged` event::

    from crmkit.lifecycle import OPPORTUNITY_LIFECYCLE

    deal, event = OPPORTUNITY_LIFECYCLE.apply(deal, "lose", payload={"lost_reason": "price"})

Built in: :data:`LEAD_LIFECYCLE`, :data:`OPPORTUNITY_LIFECYCLE`,
:data:`TICKET_LIFECYCLE`, :data:`CUSTOMER_LIFECYCLE`, and presets reproducing the
stage lists of HubSpot, Salesforce, Odoo and Frappe CRM; :data:`LIFECYCLES` has them
all by name.
"""

from crmkit.lifecycle._builtin import (
    CUSTOMER_LIFECYCLE,
    FRAPPE_CRM_DEAL_STAGES,
    HUBSPOT_LIFECYCLE_STAGES,
    LEAD_LIFECYCLE,
    LIFECYCLES,
    ODOO_PIPELINE,
    OPPORTUNITY_LIFECYCLE,
    SALESFORCE_LEAD_STATUS,
    SALESFORCE_OPPORTUNITY_STAGES,
    TICKET_LIFECYCLE,
)
from crmkit.lifecycle._definition import (
    ANY_STAGE,
    BackwardPolicy,
    ForecastCategory,
    Lifecycle,
    Stage,
    StageCategory,
    Transition,
    TransitionResult,
)
from crmkit.lifecycle._history import stage_periods, time_in_stage

__all__ = [
    "ANY_STAGE",
    "CUSTOMER_LIFECYCLE",
    "FRAPPE_CRM_DEAL_STAGES",
    "HUBSPOT_LIFECYCLE_STAGES",
    "LEAD_LIFECYCLE",
    "LIFECYCLES",
    "ODOO_PIPELINE",
    "OPPORTUNITY_LIFECYCLE",
    "SALESFORCE_LEAD_STATUS",
    "SALESFORCE_OPPORTUNITY_STAGES",
    "TICKET_LIFECYCLE",
    "BackwardPolicy",
    "ForecastCategory",
    "Lifecycle",
    "Stage",
    "StageCategory",
    "Transition",
    "TransitionResult",
    "stage_periods",
    "time_in_stage",
]
