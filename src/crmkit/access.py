"""Record visibility: who may see and change which records and fields, as plain data.

A sales rep sees their own leads, a manager their team's, an admin everything; sharing rules open more
("members of team EMEA see accounts in region EMEA"); some fields (personal notes, margins) are hidden
from some roles. This module holds that model as immutable, JSON round-trippable data and turns it into
conditions of the :mod:`condition language <crmkit.conditions>`. The store enforces it: a store opened
with :meth:`~crmkit.storage.Store.with_access` adds the visibility condition to every query it runs (in
the database), hides restricted fields, refuses writes outside the user's rights with
:class:`~crmkit.errors.PermissionDenied`, and writes every denial to the audit log as an
:class:`AccessDenied` event.

The rules, in order:

- An **admin** sees and changes every record of the tenant.
- A record kind **without an owner** field (orders, products, consents, ...) is visible to everyone;
  only admins and managers change it.
- Otherwise a record is visible when it has **no owner** (a shared queue), when the user **owns** it,
  when a **manager**'s team member owns it, or when a **sharing rule** for one of the user's teams or
  its role holds for it. It is changeable on the same terms, except that sharing rules must grant
  ``"write"``, and a **read-only** user changes nothing.
- A **restricted field** is hidden (read as empty) from every role it does not name; admins always
  see it. A query or an ordering on a hidden field is refused, and so is a write that sets one.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal

import attrs

from crmkit._json import read_enum, read_list, read_object, read_str, under
from crmkit.conditions import AllOf, AnyOf, Condition, Not, Op, Predicate, Schema, any_
from crmkit.entities import ENTITY_TYPES, Entity
from crmkit.errors import RuleError
from crmkit.events import DomainEvent, register_event

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "AccessDenied",
    "AccessPolicy",
    "FieldRestriction",
    "Principal",
    "Role",
    "SharingRule",
    "condition_fields",
]

_OWNER = "owner_id"
_CUSTOM = "custom_fields."


class Role(enum.StrEnum):
    """What a user may do in general; ownership and sharing rules decide which records."""

    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"
    READ_ONLY = "read_only"


def _frozen_text(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


def _roles(values: Iterable[Role | str]) -> frozenset[Role]:
    try:
        return frozenset(Role(value) for value in values)
    except ValueError as exc:
        msg = f"unknown role; known: {', '.join(role.value for role in Role)}"
        raise RuleError(msg, "roles") from exc


@attrs.frozen(kw_only=True)
class Principal:
    """The user on whose behalf a store is used.

    Attributes:
        user_id: The user's id (what records' ``owner_id`` holds).
        role: The user's role.
        teams: The teams the user belongs to or leads (for sharing rules).
        team_members: The users of those teams: a manager sees and changes what they own.
    """

    user_id: str = attrs.field()
    role: Role = attrs.field(converter=Role)
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_text)
    team_members: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_text)

    @user_id.validator
    def _check_user(self, _: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            msg = "a principal needs a user id"
            raise RuleError(msg, "user_id")


@attrs.frozen(kw_only=True)
class SharingRule:
    """Records of one kind made visible (or changeable) to some teams or roles by a condition.

    Attributes:
        name: A name for the rule, unique in its policy.
        kind: The record kind it opens, such as ``"account"``.
        condition: Which records (a condition over the kind's declared fields).
        teams: Users in any of these teams get it.
        roles: Users with any of these roles get it (with ``teams`` empty: everyone when both are).
        access: ``"read"``, or ``"write"`` to let them change those records too.
    """

    name: str
    kind: str
    condition: Condition
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_text)
    roles: frozenset[Role] = attrs.field(default=frozenset(), converter=_roles)
    access: Literal["read", "write"] = "read"

    def applies_to(self, principal: Principal) -> bool:
        """Whether the rule grants anything to ``principal``."""
        if not self.teams and not self.roles:
            return True
        return bool(self.teams & principal.teams) or principal.role in self.roles


@attrs.frozen(kw_only=True)
class FieldRestriction:
    """A field of one kind that only some roles may see (admins always do).

    Attributes:
        kind: The record kind, such as ``"opportunity"``.
        field: A field of that kind, or ``"custom_fields.<key>"`` for one custom field.
        roles: The roles that see it.
    """

    kind: str
    field: str
    roles: frozenset[Role] = attrs.field(default=frozenset(), converter=_roles)


def _tuple_of_rules(values: Iterable[SharingRule]) -> tuple[SharingRule, ...]:
    return tuple(values)


def _tuple_of_restrictions(values: Iterable[FieldRestriction]) -> tuple[FieldRestriction, ...]:
    return tuple(values)


def _schema(kind: str, path: str) -> Schema:
    cls = ENTITY_TYPES.get(kind)
    if cls is None:
        msg = f"unknown record kind {kind!r}; known: {', '.join(sorted(ENTITY_TYPES))}"
        raise RuleError(msg, path)
    return Schema.for_entity(cls)


@attrs.frozen(kw_only=True)
class AccessPolicy:
    """The sharing rules and field restrictions of a tenant: plain data, validated when built.

    Attributes:
        sharing: Sharing rules, each opening records of one kind.
        restricted: Fields hidden from some roles.
    """

    sharing: tuple[SharingRule, ...] = attrs.field(default=(), converter=_tuple_of_rules)
    restricted: tuple[FieldRestriction, ...] = attrs.field(default=(), converter=_tuple_of_restrictions)

    def __attrs_post_init__(self) -> None:
        names: set[str] = set()
        for index, rule in enumerate(self.sharing):
            path = f"sharing[{index}]"
            if rule.name in names:
                msg = f"the rule name {rule.name!r} is used twice"
                raise RuleError(msg, f"{path}.name")
            names.add(rule.name)
            if rule.access not in {"read", "write"}:
                msg = f"access is 'read' or 'write', not {rule.access!r}"
                raise RuleError(msg, f"{path}.access")
            schema = _schema(rule.kind, f"{path}.kind")
            try:
                schema.validate(rule.condition)
            except RuleError as exc:
                raise RuleError(exc.message, f"{path}.condition.{exc.path}".rstrip(".")) from None
        for index, restriction in enumerate(self.restricted):
            path = f"restricted[{index}]"
            schema = _schema(restriction.kind, f"{path}.kind")
            name = restriction.field
            if name in {"id", "version", _OWNER}:
                msg = f"{name!r} cannot be hidden: access depends on it"
                raise RuleError(msg, f"{path}.field")
            if name.startswith(_CUSTOM) and len(name) > len(_CUSTOM):
                continue
            declared = attrs.fields_dict(ENTITY_TYPES[restriction.kind]).get(name)
            if declared is None or name not in schema.fields:
                msg = f"{restriction.kind} has no field {name!r}"
                raise RuleError(msg, f"{path}.field")
            if declared.default is attrs.NOTHING:
                msg = f"{name!r} is required, so it cannot be hidden"
                raise RuleError(msg, f"{path}.field")

    def hidden_fields(self, principal: Principal, kind: str) -> frozenset[str]:
        """The fields of ``kind`` that ``principal`` may not see."""
        if principal.role is Role.ADMIN:
            return frozenset()
        return frozenset(
            r.field for r in self.restricted if r.kind == kind and principal.role not in r.roles
        )

    def visible(self, principal: Principal, cls: type[Entity]) -> Condition | None:
        """The condition a record of ``cls`` must meet to be visible to ``principal`` (None: all are)."""
        return self._scope(principal, cls, write=False)

    def writable(self, principal: Principal, cls: type[Entity]) -> Condition | None:
        """The condition a record must meet for ``principal`` to change it (None: all may be).

        Raises:
            PermissionDenied: Never; a read-only user gets a condition no record meets.
        """
        return self._scope(principal, cls, write=True)

    def may_write_kind(self, principal: Principal, cls: type[Entity]) -> bool:
        """Whether ``principal`` may change records of ``cls`` at all."""
        if principal.role is Role.READ_ONLY:
            return False
        if principal.role is Role.ADMIN:
            return True
        return _OWNER in attrs.fields_dict(cls) or principal.role is Role.MANAGER

    def _scope(self, principal: Principal, cls: type[Entity], *, write: bool) -> Condition | None:
        if principal.role is Role.ADMIN:
            return None
        if write and not self.may_write_kind(principal, cls):
            return _NOTHING
        if _OWNER not in attrs.fields_dict(cls):
            return None
        owners = {principal.user_id}
        if principal.role is Role.MANAGER:
            owners |= principal.team_members
        parts: list[Condition] = [
            Predicate(_OWNER, Op.EXISTS, value=False),
            Predicate(_OWNER, Op.IN, sorted(owners)),
        ]
        parts += [
            rule.condition
            for rule in self.sharing
            if rule.kind == cls.kind and rule.applies_to(principal) and (rule.access == "write" or not write)
        ]
        return any_(*parts)

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON-ready data."""
        return {
            "sharing": [
                {
                    "name": rule.name,
                    "kind": rule.kind,
                    "condition": rule.condition.to_json(),
                    "teams": sorted(rule.teams),
                    "roles": sorted(role.value for role in rule.roles),
                    "access": rule.access,
                }
                for rule in self.sharing
            ],
            "restricted": [
                {"kind": r.kind, "field": r.field, "roles": sorted(role.value for role in r.roles)}
                for r in self.restricted
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> AccessPolicy:
        """Build a policy from :meth:`to_json`'s output.

        Raises:
            RuleError: For a malformed document or an invalid rule, with the path of the node.
        """
        document = read_object(data, {"sharing", "restricted"})
        sharing = read_list(document.get("sharing", []), "sharing", _sharing_rule)
        restricted = read_list(document.get("restricted", []), "restricted", _restriction)
        return cls(sharing=sharing, restricted=restricted)


def _sharing_rule(data: Any) -> SharingRule:
    keys = {"name", "kind", "condition", "teams", "roles", "access"}
    rule = read_object(data, keys, ("name", "kind", "condition"))
    with under("condition"):
        condition = Condition.from_json(rule["condition"])
    return SharingRule(
        name=read_str(rule["name"], "name"),
        kind=read_str(rule["kind"], "kind"),
        condition=condition,
        teams=read_list(rule.get("teams", []), "teams", lambda team: read_str(team, "")),
        roles=read_list(rule.get("roles", []), "roles", _role),
        access=rule.get("access", "read"),
    )


def _restriction(data: Any) -> FieldRestriction:
    entry = read_object(data, {"kind", "field", "roles"}, ("kind", "field"))
    return FieldRestriction(
        kind=read_str(entry["kind"], "kind"),
        field=read_str(entry["field"], "field"),
        roles=read_list(entry.get("roles", []), "roles", _role),
    )


def _role(data: Any) -> Role:
    return read_enum(data, Role, "")  # type: ignore[no-any-return]


#: A condition no record meets (for a user who may change nothing).
_NOTHING: Condition = AllOf([Predicate("id", Op.EXISTS, value=False)])


def condition_fields(condition: Condition) -> Iterator[str]:
    """Every field a condition reads."""
    if isinstance(condition, Predicate):
        yield condition.field
    elif isinstance(condition, AllOf | AnyOf):
        for child in condition.conditions:
            yield from condition_fields(child)
    elif isinstance(condition, Not):
        yield from condition_fields(condition.condition)


@register_event("access_denied")
@attrs.frozen(kw_only=True)
class AccessDenied(DomainEvent):
    """A store refused a user something; ``actor`` is the user, ``entity`` the record (or its kind).

    Attributes:
        action: What was refused (see :class:`~crmkit.errors.PermissionDenied`).
        reason: Why.
    """

    action: str
    reason: str = ""
