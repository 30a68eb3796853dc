"""Small keyed values kept beside the records: engine state such as routing turns and scheduled steps.

Routing needs to remember whose turn is next, a workflow engine which steps
are due and which already ran. Such facts are not CRM records, but they must
change in the same transaction as the records they belong to, and two
processes must never both take the same turn. :class:`StateMap` (reached as
``tx.state``) keeps JSON values under a namespace and a key, each with a
version for compare-and-set, and lists a namespace in key order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from crmkit._validation import storable
from crmkit.errors import ConflictError, ValidationError

if TYPE_CHECKING:
    from crmkit.storage._base import Transaction

__all__ = ["MAX_KEY_LENGTH", "MAX_NAMESPACE_LENGTH", "StateEntry", "StateMap"]

#: The longest namespace, in characters.
MAX_NAMESPACE_LENGTH = 200
#: The longest key, in characters.
MAX_KEY_LENGTH = 500
_INCREMENT_ATTEMPTS = 5


@attrs.frozen(slots=True)
class StateEntry:
    """One stored value: its namespace, key, JSON value and version (1 when first written)."""

    namespace: str
    key: str
    value: Any
    version: int


def _check_name(what: str, value: object, longest: int) -> str:
    if not isinstance(value, str):
        raise ValidationError.single(what, f"expected text, got {type(value).__name__}")
    if not value:
        raise ValidationError.single(what, "must not be empty")
    if len(value) > longest:
        raise ValidationError.single(what, f"must be at most {longest} characters, got {len(value)}")
    if not storable(value):
        raise ValidationError.single(what, "must not contain NUL characters or lone surrogates")
    return value


def _check_bound(what: str, value: object) -> str | None:
    if value is None:
        return None
    return _check_name(what, value, MAX_KEY_LENGTH)


def encode_value(value: object) -> str:
    """The stored text of a value; ValidationError when it is not plain JSON data."""
    try:
        # ASCII escapes keep every string storable (NUL and lone surrogates included) and exact.
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        msg = f"must be plain JSON data (dict, list, str, int, float, bool, None): {exc}"
        raise ValidationError.single("value", msg) from exc


def decode_value(text: str | bytes) -> Any:
    """The value stored as ``text``."""
    return json.loads(text)


class StateMap:
    """Keyed JSON values with versions, inside one transaction (``tx.state``).

    Every change follows the transaction: it is kept on commit and undone on
    rollback, together with the records changed beside it::

        with store.transaction() as tx:
            turn = tx.state.increment("routing.turns", "team-emea")
            tx.commit()

    Namespaces and keys are non-empty text (at most 200 and 500 characters);
    :meth:`scan` lists keys in code-point order, so ISO-8601 UTC times make
    good keys for "everything due before".
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, namespace: str, key: str) -> StateEntry | None:
        """The entry under ``namespace`` and ``key``, or None when there is none."""
        self._tx._require_open()
        namespace = _check_name("namespace", namespace, MAX_NAMESPACE_LENGTH)
        key = _check_name("key", key, MAX_KEY_LENGTH)
        with self._tx._store._translate():
            return self._tx._state_get(namespace, key, lock=False)

    def put(self, namespace: str, key: str, value: Any, *, expected_version: int | None) -> StateEntry:
        """Write a value if the stored entry is at ``expected_version``; return the new entry.

        Args:
            namespace: The entry's namespace.
            key: The entry's key.
            value: Plain JSON data.
            expected_version: The version read before (``None``: the key must not exist yet).

        Raises:
            ConflictError: If the entry changed (or appeared) since it was read; nothing is written.
            ValidationError: For an empty or overlong name, or a value that is not JSON data.
        """
        self._tx._require_open()
        namespace = _check_name("namespace", namespace, MAX_NAMESPACE_LENGTH)
        key = _check_name("key", key, MAX_KEY_LENGTH)
        text = encode_value(value)
        expected = None if expected_version is None else _check_version(expected_version)
        with self._tx._store._translate():
            if expected is None:
                if not self._tx._state_insert(namespace, key, text):
                    msg = f"state {namespace}/{key} already exists"
                    raise ConflictError(msg)
                return StateEntry(namespace, key, decode_value(text), 1)
            if not self._tx._state_update(namespace, key, text, expected):
                msg = f"state {namespace}/{key} is not at version {expected}"
                raise ConflictError(msg)
            return StateEntry(namespace, key, decode_value(text), expected + 1)

    def delete(self, namespace: str, key: str, *, expected_version: int) -> None:
        """Remove an entry if it is at ``expected_version``.

        Raises:
            ConflictError: If the entry is gone or at another version; nothing is removed.
        """
        self._tx._require_open()
        namespace = _check_name("namespace", namespace, MAX_NAMESPACE_LENGTH)
        key = _check_name("key", key, MAX_KEY_LENGTH)
        expected = _check_version(expected_version)
        with self._tx._store._translate():
            if not self._tx._state_delete(namespace, key, expected):
                msg = f"state {namespace}/{key} is not at version {expected}"
                raise ConflictError(msg)

    def increment(self, namespace: str, key: str, by: int = 1) -> int:
        """Add ``by`` to an integer entry (a missing one counts as 0) and return the new value.

        Two transactions incrementing the same key never see the same result:
        the entry is locked for the rest of the transaction.

        Raises:
            ValidationError: If ``by`` or the stored value is not an integer.
        """
        self._tx._require_open()
        namespace = _check_name("namespace", namespace, MAX_NAMESPACE_LENGTH)
        key = _check_name("key", key, MAX_KEY_LENGTH)
        if type(by) is not int:
            raise ValidationError.single("by", f"expected an integer, got {type(by).__name__}")
        with self._tx._store._translate():
            for _ in range(_INCREMENT_ATTEMPTS):
                entry = self._tx._state_get(namespace, key, lock=True)
                if entry is None:
                    if self._tx._state_insert(namespace, key, encode_value(by)):
                        return by
                    continue  # created by another transaction meanwhile: read it again, locked
                if type(entry.value) is not int:
                    msg = f"state {namespace}/{key} holds {type(entry.value).__name__}, not an integer"
                    raise ValidationError.single("value", msg)
                total: int = entry.value + by
                if self._tx._state_update(namespace, key, encode_value(total), entry.version):
                    return total
        msg = f"state {namespace}/{key} kept changing while it was incremented"
        raise ConflictError(msg)

    def scan(
        self, namespace: str, *, start: str | None = None, stop: str | None = None, limit: int = 1_000
    ) -> list[StateEntry]:
        """Entries of a namespace in key order, from ``start`` (included) to ``stop`` (excluded).

        Args:
            namespace: The namespace to list.
            start: The first key to include (all from the beginning when None).
            stop: The first key to leave out (all to the end when None).
            limit: At most this many entries (1 to 100,000).
        """
        self._tx._require_open()
        namespace = _check_name("namespace", namespace, MAX_NAMESPACE_LENGTH)
        start = _check_bound("start", start)
        stop = _check_bound("stop", stop)
        if type(limit) is not int or not 1 <= limit <= 100_000:  # noqa: PLR2004 - the documented bound
            raise ValidationError.single("limit", f"expected an integer from 1 to 100000, got {limit!r}")
        with self._tx._store._translate():
            return self._tx._state_scan(namespace, start, stop, limit)


def _check_version(value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValidationError.single("expected_version", f"expected a positive integer, got {value!r}")
    return value
