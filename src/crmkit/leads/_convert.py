"""Conversion: a qualified lead becomes a contact, an account and an opportunity, exactly once (private)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import clock as _clock
from crmkit._json import read_bool, read_mapping, read_object, read_str
from crmkit.entities import Account, Contact, Entity, EntityRef, Lead, Opportunity
from crmkit.errors import RuleError, TransitionError, ValidationError
from crmkit.events import DomainEvent, EntityCreated
from crmkit.lifecycle import LEAD_LIFECYCLE

if TYPE_CHECKING:
    from datetime import datetime

    from crmkit.lifecycle import Lifecycle

__all__ = ["Conversion", "ConversionMapping", "convert_lead"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SKIP = frozenset({"id", "created_at", "updated_at", "version", "stage", "stage_history", "kind"})


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(attribute.name for attribute in attrs.fields(cls)) - _SKIP


_LEAD_FIELDS = _field_names(Lead)
_TARGETS: dict[str, type[Entity]] = {"contact": Contact, "account": Account, "opportunity": Opportunity}


def _copy(value: Mapping[str, str]) -> Mapping[str, str]:
    return dict(value)


@attrs.frozen(kw_only=True)
class ConversionMapping:
    """Which lead fields go to which field of the new contact, account and opportunity.

    Each mapping is ``target field -> lead field``. The opportunity's name is a template where
    ``{field}`` is replaced by the lead's value of that field (nothing else is interpreted).

    Attributes:
        contact: Contact field -> lead field.
        account: Account field -> lead field (an account is made when the lead has a company).
        opportunity: Opportunity field -> lead field.
        opportunity_name: The template of the opportunity's name.
        create_opportunity: Whether to create an opportunity at all.

    Raises:
        RuleError: A field the lead or the target does not have, with a path such as ``contact.emial``.
    """

    contact: Mapping[str, str] = attrs.field(
        factory=lambda: {
            "first_name": "first_name",
            "last_name": "last_name",
            "email": "email",
            "phone": "phone",
            "title": "title",
            "owner_id": "owner_id",
            "tags": "tags",
        },
        converter=_copy,
    )
    account: Mapping[str, str] = attrs.field(
        factory=lambda: {
            "name": "company",
            "domain": "domain",
            "industry": "industry",
            "employees": "employees",
            "owner_id": "owner_id",
        },
        converter=_copy,
    )
    opportunity: Mapping[str, str] = attrs.field(
        factory=lambda: {"owner_id": "owner_id", "campaign_id": "campaign_id"}, converter=_copy
    )
    opportunity_name: str = "{company}"
    create_opportunity: bool = True

    def __attrs_post_init__(self) -> None:
        for target, mapping in (
            ("contact", self.contact),
            ("account", self.account),
            ("opportunity", self.opportunity),
        ):
            known = _field_names(_TARGETS[target])
            for to_field, from_field in mapping.items():
                if to_field not in known:
                    msg = f"a {target} has no field {to_field!r}"
                    raise RuleError(msg, f"{target}.{to_field}")
                if from_field not in _LEAD_FIELDS:
                    msg = f"a lead has no field {from_field!r}"
                    raise RuleError(msg, f"{target}.{to_field}")
        for name in _PLACEHOLDER.findall(self.opportunity_name):
            if name not in _LEAD_FIELDS:
                msg = f"a lead has no field {name!r}"
                raise RuleError(msg, "opportunity_name")
        if not self.opportunity_name.strip():
            msg = "the opportunity name template is empty"
            raise RuleError(msg, "opportunity_name")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "contact": dict(self.contact),
            "account": dict(self.account),
            "opportunity": dict(self.opportunity),
            "opportunity_name": self.opportunity_name,
            "create_opportunity": self.create_opportunity,
        }

    @classmethod
    def from_json(cls, data: Any) -> ConversionMapping:
        """Build a mapping from its JSON form.

        Raises:
            RuleError: At the path of the problem.
        """
        keys = {"contact", "account", "opportunity", "opportunity_name", "create_opportunity"}
        fields = read_object(data, keys)
        for name in ("contact", "account", "opportunity"):
            if name in fields:
                fields[name] = read_mapping(fields[name], name, read_str)
        if "opportunity_name" in fields:
            read_str(fields["opportunity_name"], "opportunity_name")
        if "create_opportunity" in fields:
            read_bool(fields["create_opportunity"], "create_opportunity")
        return cls(**fields)


@attrs.frozen
class Conversion:
    """What converting a lead produced; save it all in one transaction.

    Attributes:
        lead: The lead in the ``converted`` stage, pointing at what was made.
        contact: The new contact (``None`` when the lead was converted already).
        account: The new account; ``None`` when an existing one was matched, the lead has no company,
            or it was converted already.
        matched_account: The existing account matched by domain, if any.
        opportunity: The new opportunity, if one was made.
        events: ``EntityCreated`` for each new record and the lead's ``StageChanged``.
        already_converted: True when the lead was converted before: nothing new is made.
    """

    lead: Lead
    contact: Contact | None
    account: Account | None
    matched_account: Account | None
    opportunity: Opportunity | None
    events: tuple[DomainEvent, ...]
    already_converted: bool

    @property
    def new_records(self) -> tuple[Entity, ...]:
        """The records to add: contact, account and opportunity, those that were made."""
        return tuple(
            record for record in (self.account, self.contact, self.opportunity) if record is not None
        )


def _derived_id(lead: Lead, what: str) -> str:
    """The id of a record made from a lead: the same lead always gives the same id.

    So a second conversion of the same lead cannot add a second record: the store refuses the id.
    """
    return hashlib.blake2b(f"{lead.id}\x00{what}".encode(), digest_size=16).hexdigest()


def _values(lead: Lead, mapping: Mapping[str, str]) -> dict[str, Any]:
    values = {to: getattr(lead, source) for to, source in mapping.items()}
    return {name: value for name, value in values.items() if value is not None}


def _name(template: str, lead: Lead) -> str:
    text = _PLACEHOLDER.sub(lambda match: str(getattr(lead, match.group(1)) or ""), template)
    text = " ".join(text.split())
    return text or lead.email or lead.phone or lead.id


def convert_lead(
    lead: Lead,
    mapping: ConversionMapping | None = None,
    *,
    accounts: Mapping[str, Account] | Callable[[str], Account | None] | None = None,
    lifecycle: Lifecycle = LEAD_LIFECYCLE,
    transition: str = "convert",
    at: datetime | None = None,
    actor: str | None = None,
) -> Conversion:
    """Convert a qualified lead into a contact, an account (or the one its domain matches) and an opportunity.

    A pure function: nothing is stored. The records made get ids derived from the lead's id, so saving
    a conversion twice cannot duplicate anything, and converting a lead that is converted already
    returns it with nothing new.

    Args:
        lead: The lead; its stage must allow ``transition``.
        mapping: Which fields are copied where; :class:`ConversionMapping` defaults.
        accounts: Existing accounts by domain (a mapping, or a function domain -> account or ``None``).
        lifecycle: The lead lifecycle.
        transition: The transition that converts.
        at: When the conversion happens; the current clock's time by default.
        actor: Who converted, for the history and events.

    Raises:
        TransitionError: The lead's stage does not allow conversion (not qualified).
        ValidationError: A mapped value the target refuses, naming ``contact.<field>`` and so on.
    """
    mapping = mapping or ConversionMapping()
    if lead.converted_contact_id is not None:
        return Conversion(lead, None, None, None, None, (), already_converted=True)
    moment = at or _clock.now()
    if transition not in lifecycle.allowed_transitions(lead.stage):
        raise TransitionError(
            transition,
            [f"a lead in stage {lead.stage!r} cannot be converted"],
            entity=EntityRef.to(lead),
            stage=lead.stage,
        )
    matched = None
    if lead.domain is not None and accounts is not None:
        matched = accounts(lead.domain) if callable(accounts) else accounts.get(lead.domain)
    account = None
    account_values = _values(lead, mapping.account)
    if matched is None and account_values.get("name"):
        account = _build(
            Account, "account", id=_derived_id(lead, "account"), created_at=moment, **account_values
        )
    account_id = matched.id if matched is not None else account.id if account is not None else None
    contact_values = _values(lead, mapping.contact)
    contact = _build(
        Contact,
        "contact",
        id=_derived_id(lead, "contact"),
        account_id=account_id,
        created_at=moment,
        **contact_values,
    )
    opportunity = None
    if mapping.create_opportunity:
        opportunity = _build(
            Opportunity,
            "opportunity",
            id=_derived_id(lead, "opportunity"),
            name=_name(mapping.opportunity_name, lead),
            account_id=account_id,
            contact_id=contact.id,
            created_at=moment,
            **_values(lead, mapping.opportunity),
        )
    payload = {
        "converted_contact_id": contact.id,
        "converted_account_id": account_id,
        "converted_opportunity_id": opportunity.id if opportunity is not None else None,
    }
    converted, stage_event = lifecycle.apply(
        lead, transition, actor=actor, at=max(moment, lead.updated_at), payload=payload
    )
    made = [record for record in (account, contact, opportunity) if record is not None]
    events: list[DomainEvent] = [
        EntityCreated(entity=EntityRef.to(record), at=moment, actor=actor) for record in made
    ]
    events.append(stage_event)
    return Conversion(
        converted, contact, account, matched, opportunity, tuple(events), already_converted=False
    )


def _build(cls: type[Any], where: str, **values: Any) -> Any:
    try:
        return cls(**values)
    except ValidationError as exc:
        raise exc.under(where) from None
