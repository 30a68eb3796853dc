"""Audiences: a segment less everyone who may not be contacted, capped, and split into test arms."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs

from crmkit import clock as _clock
from crmkit.conditions import parse_duration
from crmkit.entities import Channel, Consent, ConsentStatus
from crmkit.errors import RuleError, ValidationError
from crmkit.segmentation._rows import check_as_of

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "HOLDOUT",
    "Arm",
    "Audience",
    "Exclusion",
    "FrequencyCap",
    "Split",
    "bucket",
    "build_audience",
    "consent_problem",
]

#: The variant name of the customers held out of a campaign (they receive nothing, for comparison).
HOLDOUT = "holdout"


class Exclusion(StrEnum):
    """Why a segment member is left out of an audience."""

    ERASED = "erased"
    SUPPRESSED = "suppressed"
    UNSUBSCRIBED = "unsubscribed"
    DO_NOT_CONTACT = "do_not_contact"
    NO_CONSENT = "no_consent"
    CONSENT_DENIED = "consent_denied"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    FREQUENCY_CAP = "frequency_cap"


def consent_problem(
    consents: Iterable[Consent], *, channel: Channel, purpose: str, at: datetime
) -> Exclusion | None:
    """Whether the consents of one person allow contact on ``channel`` for ``purpose`` at ``at``.

    The consents that cover the purpose and the channel (or every channel) and were captured by ``at``
    are considered; the most recently captured one decides (a withdrawal on the same instant wins). It
    allows contact when granted, not withdrawn by ``at`` and not expired at ``at``.

    Returns:
        ``None`` when contact is allowed, otherwise the reason.
    """
    latest: Consent | None = None
    for consent in consents:
        if consent.purpose != purpose or consent.captured_at > at:
            continue
        if consent.channel is not None and consent.channel != channel:
            continue
        if (
            latest is None
            or consent.captured_at > latest.captured_at
            or (consent.captured_at == latest.captured_at and consent.status is not ConsentStatus.GRANTED)
        ):
            latest = consent
    if latest is None:
        return Exclusion.NO_CONSENT
    if latest.status is ConsentStatus.DENIED:
        return Exclusion.CONSENT_DENIED
    if (
        latest.status is ConsentStatus.WITHDRAWN
        and latest.withdrawn_at is not None
        and latest.withdrawn_at <= at
    ):
        return Exclusion.CONSENT_WITHDRAWN
    if latest.expires_at is not None and latest.expires_at <= at:
        return Exclusion.CONSENT_EXPIRED
    return None


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"must be a whole number of at least 1, got {value!r}"
        raise RuleError(msg, "max_messages")
    return value


def _duration(value: Any) -> str:
    try:
        parse_duration(value)
    except (RuleError, TypeError) as exc:
        msg = f"must be an ISO 8601 duration such as 'P7D', got {value!r}"
        raise RuleError(msg, "window") from exc
    return str(value)


@attrs.frozen
class FrequencyCap:
    """At most ``max_messages`` messages on the channel within ``window`` before the send.

    Attributes:
        max_messages: The most messages a person may have received in the window.
        window: An ISO 8601 duration, such as ``"P7D"``.
    """

    max_messages: int = attrs.field(converter=_positive_int)
    window: str = attrs.field(default="P7D", converter=_duration)

    def reached(self, sent: Iterable[datetime], at: datetime) -> bool:
        """True when ``max_messages`` or more of ``sent`` fall within the window ending at ``at``."""
        start = at - parse_duration(self.window)
        return sum(1 for moment in sent if start <= moment <= at) >= self.max_messages

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"max_messages": self.max_messages, "window": self.window}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FrequencyCap:
        """Read a cap back (a :class:`~crmkit.errors.RuleError` names a bad part)."""
        if not isinstance(data, Mapping) or "max_messages" not in data:
            msg = f"must be an object with max_messages, got {data!r}"
            raise RuleError(msg)
        return cls(data["max_messages"], data.get("window", "P7D"))


@attrs.frozen
class Audience:
    """Who a campaign may reach, and why each of the others may not.

    Attributes:
        included: The ids to contact, sorted.
        excluded: Id -> the first reason found to leave them out.
    """

    included: tuple[str, ...]
    excluded: Mapping[str, Exclusion]

    def exclusion_counts(self) -> dict[Exclusion, int]:
        """How many were left out for each reason."""
        counts: dict[Exclusion, int] = defaultdict(int)
        for reason in self.excluded.values():
            counts[reason] += 1
        return dict(counts)


def build_audience(
    members: Iterable[str],
    *,
    channel: Channel | str,
    purpose: str,
    consents: Iterable[Consent],
    unsubscribed: Collection[str] = (),
    erased: Collection[str] = (),
    suppressed: Collection[str] = (),
    do_not_contact: Collection[str] = (),
    sent: Iterable[tuple[str, datetime]] = (),
    cap: FrequencyCap | None = None,
    at: datetime | None = None,
) -> Audience:
    """Turn segment members into an audience for one channel and purpose.

    A member is left out, for the first reason that applies, when erased, on the suppression list,
    unsubscribed, marked do-not-contact, without a consent that allows the channel and purpose at ``at``
    (see :func:`consent_problem`), or when the frequency cap is reached by the messages already sent.

    Args:
        members: The segment's member ids.
        channel: The channel the campaign uses.
        purpose: The processing purpose consent must cover (``"newsletter"``).
        consents: Consent records; those whose subject is not a member are ignored.
        unsubscribed: Ids that unsubscribed from the channel.
        erased: Ids erased under the right to be forgotten.
        suppressed: The suppression list.
        do_not_contact: Ids that asked never to be contacted.
        sent: ``(id, sent_at)`` of the messages already sent on the channel, for the cap.
        cap: The frequency cap, if any.
        at: When the audience is built; the current clock by default.

    Raises:
        ValidationError: For an unknown channel or a naive ``at``.
    """
    try:
        channel = Channel(channel)
    except ValueError:
        raise ValidationError.single("channel", f"unknown channel {channel!r}") from None
    when = check_as_of(at, "at") if at is not None else _clock.now()
    unique = set(members)
    by_subject = _grouped(((c.subject.id, c) for c in consents), unique)
    history = _grouped(sent, unique) if cap is not None else {}
    lists = (
        (Exclusion.ERASED, set(erased)),
        (Exclusion.SUPPRESSED, set(suppressed)),
        (Exclusion.UNSUBSCRIBED, set(unsubscribed)),
        (Exclusion.DO_NOT_CONTACT, set(do_not_contact)),
    )
    included: list[str] = []
    excluded: dict[str, Exclusion] = {}
    for member in sorted(unique):
        reason = next((why for why, ids in lists if member in ids), None)
        if reason is None:
            reason = consent_problem(by_subject.get(member, ()), channel=channel, purpose=purpose, at=when)
        if reason is None and cap is not None and cap.reached(history.get(member, ()), when):
            reason = Exclusion.FREQUENCY_CAP
        if reason is None:
            included.append(member)
        else:
            excluded[member] = reason
    return Audience(tuple(included), excluded)


def _grouped(pairs: Iterable[tuple[str, Any]], keep: Collection[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for key, value in pairs:
        if key in keep:
            grouped[key].append(value)
    return grouped


# -- deterministic splits -----------------------------------------------------------------------------

_SCALE = float(1 << 64)


def bucket(customer_id: str, campaign_id: str) -> float:
    """A number in [0, 1) from SHA-256 of the campaign and customer ids: the same on every run and machine."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _arm_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:  # noqa: PLR2004 - a label
        msg = f"must be a non-empty text of at most 64 characters, got {value!r}"
        raise RuleError(msg, "name")
    if value.strip() == HOLDOUT:
        msg = f"{HOLDOUT!r} is the name of the holdout group"
        raise RuleError(msg, "name")
    return value.strip()


def _weight(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        msg = f"must be a positive number, got {value!r}"
        raise RuleError(msg, "weight")
    return float(value)


@attrs.frozen
class Arm:
    """One variant of a test and its relative weight.

    Attributes:
        name: The variant's name, such as ``"A"``.
        weight: Its share relative to the other arms (1 and 1 is an even split).
    """

    name: str = attrs.field(converter=_arm_name)
    weight: float = attrs.field(default=1.0, converter=_weight)


def _arms(value: Any) -> tuple[Arm, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"must be a list of arms, got {value!r}"
        raise RuleError(msg, "arms")
    arms: list[Arm] = []
    for index, item in enumerate(value):
        where = f"arms[{index}]"
        try:
            arm = item if isinstance(item, Arm) else Arm(**item) if isinstance(item, Mapping) else Arm(item)
        except RuleError as exc:
            raise exc.under(where) from None
        except TypeError:
            msg = f"must be an arm or {{'name': ..., 'weight': ...}}, got {item!r}"
            raise RuleError(msg, where) from None
        if any(arm.name == other.name for other in arms):
            msg = f"arm {arm.name!r} is named twice"
            raise RuleError(msg, f"arms[{index}].name")
        arms.append(arm)
    if not arms:
        msg = "needs at least one arm"
        raise RuleError(msg, "arms")
    return tuple(arms)


def _holdout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        msg = f"must be a fraction from 0 up to (not including) 1, got {value!r}"
        raise RuleError(msg, "holdout")
    return float(value)


@attrs.frozen
class Split:
    """A deterministic A/B (or multi-arm) split with a holdout group.

    A customer's :func:`bucket` for the campaign, ``u`` in [0, 1), decides: ``u < holdout`` is held out;
    otherwise ``(u - holdout) / (1 - holdout)`` falls into the arms by their cumulative weights.

    Attributes:
        arms: The variants.
        holdout: The fraction held out (0 for none).
    """

    arms: tuple[Arm, ...] = attrs.field(converter=_arms)
    holdout: float = attrs.field(default=0.0, converter=_holdout)
    _bounds: tuple[float, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        total = sum(arm.weight for arm in self.arms)
        running, bounds = 0.0, []
        for arm in self.arms:
            running += arm.weight
            bounds.append(running / total)
        bounds[-1] = 1.0
        object.__setattr__(self, "_bounds", tuple(bounds))

    def assign(self, customer_id: str, campaign_id: str) -> str:
        """The arm name (or :data:`HOLDOUT`) of a customer in a campaign."""
        u = bucket(customer_id, campaign_id)
        if u < self.holdout:
            return HOLDOUT
        v = (u - self.holdout) / (1.0 - self.holdout)
        for arm, bound in zip(self.arms, self._bounds, strict=True):
            if v < bound:
                return arm.name
        return self.arms[-1].name

    def assign_all(self, customer_ids: Iterable[str], campaign_id: str) -> dict[str, str]:
        """Customer id -> arm name (or :data:`HOLDOUT`) for every customer."""
        return {customer: self.assign(customer, campaign_id) for customer in customer_ids}

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"arms": [{"name": a.name, "weight": a.weight} for a in self.arms], "holdout": self.holdout}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Split:
        """Read a split back (a :class:`~crmkit.errors.RuleError` names a bad part)."""
        if not isinstance(data, Mapping) or "arms" not in data:
            msg = f"must be an object with arms, got {data!r}"
            raise RuleError(msg)
        return cls(data["arms"], data.get("holdout", 0.0))
