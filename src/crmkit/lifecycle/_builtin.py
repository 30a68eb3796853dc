"""The built-in lifecycles and the presets that reproduce other CRMs' stage lists (private)."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import TYPE_CHECKING

from crmkit.conditions import field
from crmkit.lifecycle._definition import (
    ANY_STAGE,
    BackwardPolicy,
    ForecastCategory,
    Lifecycle,
    Stage,
    StageCategory,
    Transition,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
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
]

OPEN, WON, LOST, CLOSED = StageCategory.OPEN, StageCategory.WON, StageCategory.LOST, StageCategory.CLOSED
PIPELINE, BEST_CASE, COMMIT = ForecastCategory.PIPELINE, ForecastCategory.BEST_CASE, ForecastCategory.COMMIT
FORECAST_CLOSED, OMITTED = ForecastCategory.CLOSED, ForecastCategory.OMITTED

# -- crmkit's own lifecycles ---------------------------------------------------------------------

LEAD_LIFECYCLE = Lifecycle(
    "lead",
    "lead",
    [
        Stage("new"),
        Stage("contacted"),
        Stage("nurturing", label="Nurturing (not ready to buy yet)"),
        Stage("qualified"),
        Stage("converted", category=WON, terminal=True),
        Stage("disqualified", category=LOST),
    ],
    [
        Transition("contact", ["new"], "contacted"),
        Transition("nurture", ["new", "contacted"], "nurturing"),
        # Sales can only work a lead it can reach.
        Transition(
            "qualify",
            ["contacted", "nurturing"],
            "qualified",
            guard=field("email").exists() | field("phone").exists(),
        ),
        Transition("convert", ["qualified"], "converted"),
        Transition(
            "disqualify",
            ["new", "contacted", "nurturing", "qualified"],
            "disqualified",
            required=["custom_fields.disqualification_reason"],
        ),
        Transition("recycle", ["qualified", "disqualified"], "nurturing"),
    ],
    description="A lead is contacted and qualified, then converted or disqualified; "
    "a qualified or disqualified lead can be recycled into nurturing.",
)

OPPORTUNITY_LIFECYCLE = Lifecycle(
    "opportunity",
    "opportunity",
    [
        Stage("prospecting", probability="0.1", forecast=PIPELINE),
        Stage("qualification", probability="0.2", forecast=PIPELINE),
        Stage("proposal", probability="0.5", forecast=BEST_CASE),
        Stage("negotiation", probability="0.8", forecast=COMMIT),
        Stage("won", category=WON, probability="1", forecast=FORECAST_CLOSED, terminal=True),
        Stage("lost", category=LOST, probability="0", forecast=OMITTED, terminal=True),
    ],
    [
        Transition("qualify", ["prospecting"], "qualification"),
        Transition("propose", ["qualification"], "proposal"),
        Transition("negotiate", ["proposal"], "negotiation"),
        Transition("requalify", ["proposal", "negotiation"], "qualification"),
        # A won deal needs its value, or revenue reports cannot count it.
        Transition("win", ["proposal", "negotiation"], "won", guard=field("amount.amount").gt(0)),
        Transition("lose", [ANY_STAGE], "lost", required=["lost_reason"]),
    ],
    description="A deal is qualified, proposed and negotiated, then won or lost (with a reason).",
)

TICKET_LIFECYCLE = Lifecycle(
    "ticket",
    "ticket",
    [
        Stage("new"),
        Stage("open"),
        Stage("pending", label="Pending on customer"),
        Stage("escalated", label="Escalated to second line"),
        Stage("resolved", category=CLOSED),
        Stage("closed", category=CLOSED, terminal=True),
        Stage("reopened"),
    ],
    [
        Transition("accept", ["new", "reopened"], "open"),
        Transition("wait_on_customer", ["open", "escalated", "reopened"], "pending"),
        Transition("customer_replied", ["pending"], "open"),
        Transition("escalate", ["new", "open", "pending", "reopened"], "escalated"),
        Transition("return_to_first_line", ["escalated"], "open"),
        Transition("resolve", ["new", "open", "pending", "escalated", "reopened"], "resolved"),
        Transition("close", ["resolved"], "closed"),
        Transition("reopen", ["resolved"], "reopened"),
    ],
    description="A ticket is worked, may wait on the customer or go to second line, "
    "is resolved, then closed or reopened.",
)

CUSTOMER_LIFECYCLE = Lifecycle(
    "customer",
    "contact",
    [
        Stage("subscriber"),
        Stage("lead"),
        Stage("marketing_qualified", label="Marketing qualified lead"),
        Stage("sales_qualified", label="Sales qualified lead"),
        Stage("opportunity"),
        Stage("customer", category=WON),
        Stage("evangelist", category=WON),
        Stage("churned", category=LOST),
        Stage("won_back", category=WON, label="Won back"),
    ],
    [
        Transition("engage", ["subscriber"], "lead"),
        Transition("marketing_qualify", ["subscriber", "lead"], "marketing_qualified"),
        Transition("sales_qualify", ["lead", "marketing_qualified"], "sales_qualified"),
        Transition("open_opportunity", ["marketing_qualified", "sales_qualified"], "opportunity"),
        Transition("acquire", ["opportunity"], "customer"),
        Transition("recycle", ["marketing_qualified", "sales_qualified", "opportunity"], "lead"),
        Transition("advocate", ["customer", "won_back"], "evangelist"),
        Transition("churn", ["customer", "evangelist", "won_back"], "churned"),
        Transition("win_back", ["churned"], "won_back"),
    ],
    description="A person's journey from subscriber to customer and evangelist; "
    "customers may churn and be won back.",
)

# -- presets: other CRMs' stage lists, as data -----------------------------------------------------


def _slug(name: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", name.lower()))


def _move_anywhere(stages: list[Stage], *, lost_stage: str) -> list[Transition]:
    """One ``to_<stage>`` transition per stage, from any open stage, as a pipeline board allows."""
    return [
        Transition(
            f"to_{_slug(stage.name)}",
            [ANY_STAGE],
            stage.name,
            required=["lost_reason"] if stage.name == lost_stage else [],
        )
        for stage in stages
    ]


_HUBSPOT_STAGES = [
    Stage("subscriber", label="Subscriber"),
    Stage("lead", label="Lead"),
    Stage("marketingqualifiedlead", label="Marketing Qualified Lead"),
    Stage("salesqualifiedlead", label="Sales Qualified Lead"),
    Stage("opportunity", label="Opportunity"),
    Stage("customer", category=WON, label="Customer"),
    Stage("evangelist", category=WON, label="Evangelist"),
    Stage("other", category=CLOSED, terminal=True, label="Other"),
]
HUBSPOT_LIFECYCLE_STAGES = Lifecycle(
    "hubspot_lifecycle_stages",
    "contact",
    _HUBSPOT_STAGES,
    [Transition(f"to_{stage.name}", [ANY_STAGE], stage.name) for stage in _HUBSPOT_STAGES[1:]],
    backward=BackwardPolicy.FORBID,
    description="HubSpot's default lifecycle stages, with HubSpot's internal values as stage names: "
    "a contact moves forward to any later stage, never back.",
)

SALESFORCE_LEAD_STATUS = Lifecycle(
    "salesforce_lead_status",
    "lead",
    [
        Stage("Open - Not Contacted"),
        Stage("Working - Contacted"),
        Stage("Closed - Converted", category=WON, terminal=True),
        Stage("Closed - Not Converted", category=LOST),
    ],
    [
        Transition("work", ["Open - Not Contacted"], "Working - Contacted"),
        Transition("convert", ["Open - Not Contacted", "Working - Contacted"], "Closed - Converted"),
        Transition("close", ["Open - Not Contacted", "Working - Contacted"], "Closed - Not Converted"),
        Transition("reopen", ["Closed - Not Converted"], "Working - Contacted"),
    ],
    description="Salesforce's default lead status values.",
)

_SALESFORCE_OPPORTUNITY = [
    Stage("Prospecting", probability="0.1", forecast=PIPELINE),
    Stage("Qualification", probability="0.1", forecast=PIPELINE),
    Stage("Needs Analysis", probability="0.2", forecast=PIPELINE),
    Stage("Value Proposition", probability="0.5", forecast=BEST_CASE),
    Stage("Id. Decision Makers", probability="0.6", forecast=BEST_CASE),
    Stage("Perception Analysis", probability="0.7", forecast=BEST_CASE),
    Stage("Proposal/Price Quote", probability="0.75", forecast=BEST_CASE),
    Stage("Negotiation/Review", probability="0.9", forecast=COMMIT),
    Stage("Closed Won", category=WON, probability="1", forecast=FORECAST_CLOSED, terminal=True),
    Stage("Closed Lost", category=LOST, probability="0", forecast=OMITTED, terminal=True),
]
SALESFORCE_OPPORTUNITY_STAGES = Lifecycle(
    "salesforce_opportunity_stages",
    "opportunity",
    _SALESFORCE_OPPORTUNITY,
    _move_anywhere(_SALESFORCE_OPPORTUNITY, lost_stage="Closed Lost"),
    description="Salesforce's default opportunity stages and probabilities; any open deal may move to "
    "any stage. Forecast categories follow the usual mapping (early stages pipeline, middle stages best "
    "case, negotiation commit); adjust them with update_stage.",
)

_ODOO = [
    Stage("New", probability="0.1"),
    Stage("Qualified", probability="0.3"),
    Stage("Proposition", probability="0.7"),
    Stage("Won", category=WON, probability="1", terminal=True),
    # Odoo marks a lost deal inactive with a lost reason rather than moving it to a stage.
    Stage("Lost", category=LOST, probability="0", terminal=True),
]
ODOO_PIPELINE = Lifecycle(
    "odoo_pipeline",
    "opportunity",
    _ODOO,
    _move_anywhere(_ODOO, lost_stage="Lost"),
    description="Odoo CRM's default pipeline (New 10 %, Qualified 30 %, Proposition 70 %, Won 100 %), "
    "with Lost as a stage for what Odoo does by archiving with a lost reason.",
)

_FRAPPE = [
    Stage("Qualification", probability="0.1"),
    Stage("Demo/Making", probability="0.25"),
    Stage("Proposal/Quotation", probability="0.5"),
    Stage("Negotiation", probability="0.7"),
    Stage("Ready to Close", probability="0.9"),
    Stage("Won", category=WON, probability="1", terminal=True),
    Stage("Lost", category=LOST, probability="0", terminal=True),
]
FRAPPE_CRM_DEAL_STAGES = Lifecycle(
    "frappe_crm_deal_stages",
    "opportunity",
    _FRAPPE,
    _move_anywhere(_FRAPPE, lost_stage="Lost"),
    description="Frappe CRM's default deal statuses and probabilities; any open deal may move to any status.",
)

LIFECYCLES: Mapping[str, Lifecycle] = MappingProxyType(
    {
        lifecycle.name: lifecycle
        for lifecycle in (
            LEAD_LIFECYCLE,
            OPPORTUNITY_LIFECYCLE,
            TICKET_LIFECYCLE,
            CUSTOMER_LIFECYCLE,
            HUBSPOT_LIFECYCLE_STAGES,
            SALESFORCE_LEAD_STATUS,
            SALESFORCE_OPPORTUNITY_STAGES,
            ODOO_PIPELINE,
            FRAPPE_CRM_DEAL_STAGES,
        )
    }
)
"""Every built-in lifecycle and preset, by its name."""
