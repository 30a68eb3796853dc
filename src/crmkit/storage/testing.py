"""The storage conformance suite: what every crmkit store must do, as pytest tests.

An adapter proves itself by subclassing :class:`StoreConformance` and
overriding one fixture, ``store``, which yields a fresh, empty store whose
clock is the ``clock`` fixture::

    import pytest
    from crmkit.storage.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, clock, tmp_path):
            store = MyStore(tmp_path / "crm", clock=clock)
            yield store
            store.close()

The suite needs ``pytest`` and ``hypothesis`` (crmkit's ``test`` group).
"""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.access import AccessDenied, AccessPolicy, FieldRestriction, Principal, Role, SharingRule
from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import Condition, Op, Predicate, Schema, field
from crmkit.conditions._tree import AllOf, AnyOf, Not
from crmkit.entities import ENTITY_TYPES, Contact, EntityRef, Lead, LineItem, Opportunity, Order, OrderStatus
from crmkit.errors import ConflictError, NotFound, PermissionDenied, RuleError, StorageError, ValidationError
from crmkit.events import DomainEvent, EntityCreated, StageChanged, register_event
from crmkit.money import Money
from crmkit.storage._analytics import rfm_rows_of_orders
from crmkit.testing import entities

if TYPE_CHECKING:
    from collections.abc import Iterator

    from crmkit.storage._base import Store

__all__ = ["START", "NoteRecorded", "StoreConformance"]

#: The time the suite's clock starts at.
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

_COUNTRIES = ["DE", "FR", "GB", "US", "JP", None]
_INDUSTRIES = ["software", "retail", "Software", "soft", "", None]


def _dataset(size: int, seed: int) -> list[Lead]:
    """Leads with a spread of values, missing values and edge cases, from a fixed seed."""
    rng = random.Random(seed)  # noqa: S311 - test data
    leads = []
    for number in range(size):
        created = START - timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86_399))
        leads.append(
            Lead(
                id=f"lead-{number:03d}",
                created_at=created,
                email=f"person{number}@example.com" if rng.random() < 0.8 else None,
                company=f"Company {rng.randint(0, 9)}",
                country=rng.choice(_COUNTRIES),
                industry=rng.choice(_INDUSTRIES) or None,
                employees=rng.choice([None, 0, 1, 9, 10, 11, 250, 5000]),
                score=rng.randint(-5, 100),
                tags=frozenset(rng.sample(["vip", "new", "churn-risk"], rng.randint(0, 2))),
                converted_at=None if rng.random() < 0.5 else created + timedelta(days=rng.randint(0, 5)),
            )
        )
    return leads


_SCHEMA = Schema.for_entity(Lead)


@register_event("crmkit_testing_note")
@attrs.frozen(kw_only=True)
class NoteRecorded(DomainEvent):
    """A free-text note about a record: an event that can carry personal data (for redaction tests)."""

    text: str
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "country": st.sampled_from(["DE", "FR", "GB", "US", "JP"]),
    "industry": st.sampled_from(["software", "retail", "Software", "soft", "ware", "x"]),
    "employees": st.sampled_from([0, 1, 9, 10, 11, 250, 5000]),
    "score": st.integers(-5, 100),
    "email": st.sampled_from(["person1@example.com", "person2@example.com", "nobody@example.com"]),
    "created_at": st.integers(-60 * 24, 2).map(lambda days: START + timedelta(days=days / 24)),
    "converted_at": st.integers(-60 * 24, 2).map(lambda days: START + timedelta(days=days / 24)),
}
_TEXT_VALUES = st.sampled_from(["soft", "ware", "So", "", "person1", "example.com", "Company 3"])
_PATTERNS = st.sampled_from(["^soft", "ware$", "(?i)SOFT", "[0-9]{2}@", "Company [1-3]"])
_DURATIONS = st.sampled_from(["P1D", "P7D", "P30D", "PT12H", "P1M"])


@st.composite
def _predicates(draw: st.DrawFn) -> Predicate:  # noqa: PLR0911 - one branch per operator family
    name = draw(st.sampled_from([*sorted(_VALUES), "tags"]))
    if name == "tags":
        if draw(st.booleans()):
            return Predicate("tags", Op.CONTAINS, draw(st.sampled_from(["vip", "new", "other"])))
        return Predicate("tags", Op.EXISTS, draw(st.booleans()))
    ops = sorted(_SCHEMA.fields[name].operators)
    op = draw(st.sampled_from(ops))
    values = _VALUES[name]
    if op is Op.EXISTS:
        return Predicate(name, op, draw(st.booleans()))
    if op in {Op.IN, Op.NOT_IN}:
        return Predicate(name, op, draw(st.lists(values, min_size=1, max_size=3)))
    if op is Op.BETWEEN:
        return Predicate(name, op, tuple(sorted(draw(st.lists(values, min_size=2, max_size=2)))))
    if op in {Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH}:
        return Predicate(name, op, draw(_TEXT_VALUES))
    if op is Op.MATCHES:
        return Predicate(name, op, draw(_PATTERNS))
    if op in {Op.WITHIN_LAST, Op.OLDER_THAN}:
        return Predicate(name, op, draw(_DURATIONS))
    return Predicate(name, op, draw(values))


_CONDITIONS = st.recursive(
    _predicates(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(AllOf),
        st.lists(children, min_size=1, max_size=3).map(AnyOf),
        children.map(Not),
    ),
    max_leaves=6,
)


class StoreConformance:
    """The contract of a crmkit store, as tests. Subclass it and override the ``store`` fixture."""

    @pytest.fixture
    def clock(self) -> FixedClock:
        """The clock the store under test must use (it stamps writes and audit events)."""
        return FixedClock(START)

    @pytest.fixture(autouse=True)
    def _clock_is_current(self, clock: FixedClock) -> Iterator[None]:
        """Entities built in a test take their times from the same clock as the store."""
        with use_clock(clock):
            yield

    @pytest.fixture
    def store(self, clock: FixedClock) -> Store:
        """A fresh, empty store using ``clock``; adapters override this fixture (it may yield)."""
        msg = "override the 'store' fixture to return the adapter under test"
        raise NotImplementedError(msg)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def add_all(store: Store, records: list[Any]) -> list[Any]:
        """Store records in one transaction; return them as stored."""
        with store.transaction() as tx:
            stored = [tx.repository(type(record)).add(record) for record in records]
            tx.commit()
        return stored

    # -- create, read, update, delete ---------------------------------------------------------

    def test_an_added_entity_reads_back_equal_at_version_one(self, store: Store) -> None:
        lead = Lead(email="ada@example.com", country="GB", employees=12, tags=frozenset({"vip"}))
        (stored,) = self.add_all(store, [lead])
        assert stored.version == 1
        assert attrs.evolve(stored, version=0) == lead
        with store.transaction() as tx:
            assert tx[Lead].get(lead.id) == stored

    def test_getting_a_missing_id_raises_not_found(self, store: Store) -> None:
        with store.transaction() as tx, pytest.raises(NotFound) as caught:
            tx[Lead].get("nope")
        assert (caught.value.kind, caught.value.id) == ("lead", "nope")

    def test_get_many_keeps_the_order_asked_and_names_a_missing_id(self, store: Store) -> None:
        a, b = self.add_all(store, [Lead(id="a", email="a@x.io"), Lead(id="b", email="b@x.io")])
        with store.transaction() as tx:
            assert tx[Lead].get_many(["b", "a", "b"]) == [b, a, b]
            with pytest.raises(NotFound, match="'c'"):
                tx[Lead].get_many(["a", "c"])

    def test_every_entity_type_round_trips(self, store: Store) -> None:
        @given(st.sampled_from(sorted(ENTITY_TYPES)).flatmap(entities))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(generated: Any) -> None:
            record = attrs.evolve(generated, version=0)  # never stored yet
            with store.transaction() as tx:
                repository = tx.repository(type(record))
                stored = repository.add(record)
                assert repository.get(record.id) == stored
                assert attrs.evolve(stored, version=0) == record
                # rolled back: the next example may reuse the id

        check()

    def test_update_bumps_the_version_and_stamps_updated_at(self, store: Store, clock: FixedClock) -> None:
        (stored,) = self.add_all(store, [Lead(email="ada@example.com")])
        clock.advance(hours=1)
        with store.transaction() as tx:
            updated = tx[Lead].update(attrs.evolve(stored, country="GB"))
            tx.commit()
        assert updated.version == 2
        assert updated.updated_at == START + timedelta(hours=1)
        with store.transaction() as tx:
            assert tx[Lead].get(stored.id) == updated

    def test_a_stale_update_conflicts_and_changes_nothing(self, store: Store) -> None:
        (stored,) = self.add_all(store, [Lead(email="ada@example.com")])
        with store.transaction() as tx:
            first = tx[Lead].update(attrs.evolve(stored, country="GB"))
            tx.commit()
        with store.transaction() as tx:
            with pytest.raises(ConflictError):
                tx[Lead].update(attrs.evolve(stored, country="FR"))
            assert tx[Lead].get(stored.id) == first

    def test_updating_or_deleting_what_was_never_stored_raises_not_found(self, store: Store) -> None:
        with store.transaction() as tx:
            with pytest.raises(NotFound):
                tx[Lead].update(Lead(email="ghost@example.com", version=1))
            with pytest.raises(NotFound):
                tx[Lead].delete(Lead(email="ghost@example.com", version=1))

    def test_adding_twice_conflicts(self, store: Store) -> None:
        (stored,) = self.add_all(store, [Lead(id="l1", email="ada@example.com")])
        with store.transaction() as tx:
            with pytest.raises(ConflictError):
                tx[Lead].add(stored)  # version 1: stored before
            with pytest.raises(ConflictError):
                tx[Lead].add(Lead(id="l1", email="other@example.com"))

    def test_delete_removes_the_entity_and_checks_its_version(self, store: Store) -> None:
        (stored,) = self.add_all(store, [Lead(email="ada@example.com")])
        with store.transaction() as tx:
            with pytest.raises(ConflictError):
                tx[Lead].delete(attrs.evolve(stored, version=7))
            tx[Lead].delete(stored)
            tx.commit()
        with store.transaction() as tx, pytest.raises(NotFound):
            tx[Lead].get(stored.id)

    def test_a_repository_refuses_other_entity_types(self, store: Store) -> None:
        with store.transaction() as tx, pytest.raises(ValidationError):
            tx[Lead].add(Contact(email="ada@example.com"))  # type: ignore[arg-type]

    # -- the unit of work ---------------------------------------------------------------------

    def test_rolls_back_uncommitted_work_by_default(self, store: Store) -> None:
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
        with store.transaction() as tx:
            assert tx[Lead].count() == 0
            assert tx.audit() == []

    def test_rolls_back_on_an_exception(self, store: Store) -> None:
        def fail_half_way() -> None:
            with store.transaction() as tx:
                tx[Lead].add(Lead(id="l1", email="ada@example.com"))
                tx[Contact].add(Contact(id="c1", email="ada@example.com"))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_half_way()
        with store.transaction() as tx:
            assert tx[Lead].count() == tx[Contact].count() == 0

    def test_commit_makes_all_changes_permanent_together(self, store: Store) -> None:
        with store.transaction() as tx:
            tx[Lead].add(Lead(id="l1", email="ada@example.com"))
            tx[Contact].add(Contact(id="c1", email="ada@example.com"))
            tx.commit()
        with store.transaction() as tx:
            assert tx[Lead].count() == tx[Contact].count() == 1

    def test_a_finished_transaction_cannot_be_used(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.commit()
        with pytest.raises(StorageError):
            tx[Lead].count()
        with pytest.raises(StorageError):
            tx.commit()

    def test_a_thread_cannot_nest_transactions(self, store: Store) -> None:
        with store.transaction(), pytest.raises(StorageError), store.transaction():
            pass

    def test_repositories_accept_a_kind_name(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.repository("lead").entity_class is Lead
            with pytest.raises(RuleError):
                tx.repository("planet")

    # -- queries ------------------------------------------------------------------------------

    def test_queries_agree_with_the_condition_interpreter(self, store: Store) -> None:
        dataset = self.add_all(store, _dataset(80, seed=11))

        @given(_CONDITIONS)
        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        def check(condition: Condition) -> None:
            expected = [lead.id for lead in dataset if _SCHEMA.evaluate(condition, lead, now=START)]
            with store.transaction() as tx:
                found = [lead.id for lead in tx[Lead].query(condition, order_by=["id"], limit=1000).items]
                counted = tx[Lead].count(condition)
            assert found == sorted(expected), json.dumps(condition.to_json())
            assert counted == len(expected)

        check()

    def test_queries_take_the_json_form(self, store: Store) -> None:
        self.add_all(store, _dataset(30, seed=3))
        condition = {
            "all": [
                {"field": "country", "op": "eq", "value": "DE"},
                {"field": "employees", "op": "ge", "value": 10},
            ]
        }
        with store.transaction() as tx:
            found = tx[Lead].query(condition).items
        assert found
        assert all(lead.country == "DE" and (lead.employees or 0) >= 10 for lead in found)

    def test_queries_on_unknown_or_hostile_fields_are_rule_errors(self, store: Store) -> None:
        with store.transaction() as tx:
            for name in ["nope", "data", "id; DROP TABLE crm_lead", "email) OR (1=1"]:
                with pytest.raises(RuleError):
                    tx[Lead].query({"field": name, "op": "eq", "value": "x"})
            with pytest.raises(RuleError):
                tx[Lead].query(order_by=["tags"])
            with pytest.raises(RuleError):
                tx[Lead].query(order_by=[("email", "sideways")])  # type: ignore[list-item]

    @pytest.mark.parametrize(
        "order_by",
        [
            ["id"],
            [("score", "desc")],
            ["employees"],
            [("employees", "desc"), "country"],
            ["created_at"],
            [("converted_at", "desc")],
        ],
    )
    def test_pages_follow_the_ordering_without_gaps_or_repeats(self, store: Store, order_by: Any) -> None:
        dataset = self.add_all(store, _dataset(45, seed=5))
        keys = [(item, "asc") if isinstance(item, str) else item for item in order_by]
        expected = _python_order(dataset, keys)
        with store.transaction() as tx:
            seen: list[str] = []
            after = None
            while True:
                page = tx[Lead].query(order_by=order_by, limit=7, after=after)
                seen.extend(lead.id for lead in page.items)
                if page.next_cursor is None:
                    break
                after = page.next_cursor
        assert seen == [lead.id for lead in expected]

    def test_a_cursor_only_fits_its_own_ordering(self, store: Store) -> None:
        self.add_all(store, _dataset(5, seed=1))
        with store.transaction() as tx:
            cursor = tx[Lead].query(order_by=["score"], limit=2).next_cursor
            assert cursor is not None
            with pytest.raises(ValidationError):
                tx[Lead].query(order_by=["employees"], after=cursor)
            with pytest.raises(ValidationError):
                tx[Lead].query(after="not-a-cursor")
            with pytest.raises(ValidationError):
                tx[Lead].query(limit=0)

    def test_stream_yields_every_match_once_in_order(self, store: Store) -> None:
        dataset = self.add_all(store, _dataset(55, seed=8))
        condition = field("score").ge(20)
        with store.transaction() as tx:
            streamed = [lead.id for lead in tx[Lead].stream(condition, order_by=["score"], batch_size=4)]
        expected = _python_order([lead for lead in dataset if lead.score >= 20], [("score", "asc")])
        assert streamed == [lead.id for lead in expected]

    def test_relative_time_conditions_use_the_store_clock(self, store: Store, clock: FixedClock) -> None:
        self.add_all(store, [Lead(id="old", email="a@x.io", created_at=START - timedelta(days=10))])
        recent = field("created_at").within_last("P7D")
        with store.transaction() as tx:
            assert tx[Lead].count(recent) == 0
        clock.set(START - timedelta(days=5))
        with store.transaction() as tx:
            assert tx[Lead].count(recent) == 1

    def test_decimal_and_money_fields_are_queryable(self, store: Store) -> None:
        deals = [
            Opportunity(id=f"o{i}", name=f"Deal {i}", amount=Money(amount, "EUR"))
            for i, amount in enumerate(["10.00", "99.99", "100.00", "2500.50"])
        ]
        self.add_all(store, deals)
        with store.transaction() as tx:
            big = tx[Opportunity].query(field("amount.amount").ge(Decimal(100)), order_by=["id"]).items
        assert [deal.id for deal in big] == ["o2", "o3"]

    # -- bulk import --------------------------------------------------------------------------

    def test_bulk_import_stores_good_rows_and_reports_bad_ones(self, store: Store) -> None:
        rows: list[Any] = [
            {"email": "ok1@example.com"},
            {"email": "not-an-email"},
            Lead(id="dup", email="ok2@example.com"),
            {"id": "dup", "email": "again@example.com"},
            {"email": "ok3@example.com", "employees": -3, "surprise": 1},
        ]
        with store.transaction() as tx:
            report = tx[Lead].bulk_add(rows)
            tx.commit()
        assert [lead.email for lead in report.stored] == ["ok1@example.com", "ok2@example.com"]
        assert [row.index for row in report.rejected] == [1, 3, 4]
        assert isinstance(report.rejected[1].error, ConflictError)
        assert "surprise" in report.rejected[2].error.paths  # type: ignore[attr-defined]
        with store.transaction() as tx:
            assert tx[Lead].count() == 2
            assert len(tx.audit()) == 2

    def test_a_large_bulk_import_of_any_kind_reads_back_as_stored(self, store: Store) -> None:
        # Enough rows for an adapter's bulk path (PostgreSQL switches to COPY at 64): a few drawn
        # records, each stored many times under a new id.
        few = st.sampled_from(sorted(ENTITY_TYPES)).flatmap(lambda kind: st.lists(entities(kind), max_size=3))

        @given(few)
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def check(drawn: list[Any]) -> None:
            if not drawn:
                return
            records = [attrs.evolve(drawn[n % len(drawn)], id=f"bulk-{n:03d}", version=0) for n in range(70)]
            cls = type(drawn[0])
            with store.transaction() as tx:  # not committed: every example starts from the same store
                report = tx[cls].bulk_add(records)
                assert len(report.stored) == len(records)
                assert tx[cls].get_many([record.id for record in records]) == list(report.stored)
                created = {
                    entry.event.entity: entry.event.at
                    for entry in tx.audit(limit=10_000)
                    if isinstance(entry.event, EntityCreated)
                }
                assert all(created.get(EntityRef.to(record)) == record.updated_at for record in report.stored)

        check()

    def test_bulk_import_rejects_ids_already_stored(self, store: Store) -> None:
        self.add_all(store, [Lead(id="taken", email="a@x.io")])
        with store.transaction() as tx:
            report = tx[Lead].bulk_add([Lead(id="taken", email="b@x.io"), Lead(id="free", email="c@x.io")])
        assert [row.index for row in report.rejected] == [0]
        assert [lead.id for lead in report.stored] == ["free"]

    def test_strict_bulk_import_stores_nothing_when_a_row_is_bad(self, store: Store) -> None:
        with store.transaction() as tx:
            with pytest.raises(ValidationError) as caught:
                tx[Lead].bulk_add([{"email": "ok@example.com"}, {"email": "bad"}], strict=True)
            assert caught.value.paths == ("[1].email",)
            assert tx[Lead].count() == 0

    # -- the audit log ------------------------------------------------------------------------

    def test_every_write_is_audited_in_the_same_transaction(self, store: Store, clock: FixedClock) -> None:
        with store.transaction(actor="u-1") as tx:
            lead = tx[Lead].add(Lead(email="ada@example.com"))
            clock.advance(minutes=5)
            lead = tx[Lead].update(attrs.evolve(lead, country="GB"))
            tx.record(
                StageChanged(
                    entity=EntityRef.to(lead), from_stage="new", to_stage="contacted", at=clock.now()
                )
            )
            clock.advance(minutes=5)
            tx[Lead].delete(lead)
            tx.commit()
        with store.transaction() as tx:
            entries = tx.audit(entity=lead)
        assert [entry.event.name for entry in entries] == [
            "entity_created",
            "entity_updated",
            "stage_changed",
            "entity_deleted",
        ]
        assert [entry.event.actor for entry in entries] == ["u-1", "u-1", None, "u-1"]
        assert entries[1].event.changed == ("country",)  # type: ignore[attr-defined]
        assert [entry.sequence for entry in entries] == sorted(entry.sequence for entry in entries)

    def test_the_audit_log_is_queryable_by_time_range(self, store: Store, clock: FixedClock) -> None:
        for minutes in range(4):
            clock.set(START + timedelta(minutes=minutes * 10))
            self.add_all(store, [Lead(id=f"l{minutes}", email=f"p{minutes}@x.io", created_at=clock.now())])
        with store.transaction() as tx:
            window = tx.audit(since=START + timedelta(minutes=10), until=START + timedelta(minutes=30))
            assert [entry.event.entity.id for entry in window] == ["l1", "l2"]
            assert len(tx.audit(limit=3)) == 3
            with pytest.raises(ValidationError):
                tx.audit(since=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test

    # -- hostile values -----------------------------------------------------------------------

    @pytest.mark.parametrize(
        "text",
        [
            'O\'Brien "quoted" `back`',
            "'; DROP TABLE crm_lead; --",
            "Robert'); DELETE FROM crmkit_audit; --",
            "emoji 🧑‍💻🚀 and ünïcödé, 中文, עברית",
            "x" * 1_000_000,
            "\\ backslash \\\\ and %s %(name)s ? $1",
        ],
    )
    def test_hostile_values_round_trip_unchanged(self, store: Store, text: str) -> None:
        lead = Lead(id="h", company=text, email="h@example.com", custom_fields={"note": text})
        (stored,) = self.add_all(store, [lead])
        with store.transaction() as tx:
            assert tx[Lead].get("h") == stored
            assert tx[Lead].count(field("company").eq(text)) == 1
            assert tx[Lead].count() == 1

    def test_text_with_nul_is_refused_by_validation_before_any_adapter_sees_it(self, store: Store) -> None:
        with store.transaction() as tx:
            report = tx[Lead].bulk_add([{"email": "a@example.com", "company": "Acme\x00Inc"}])
            assert report.rejected[0].error.paths == ("company",)  # type: ignore[attr-defined]
            assert tx[Lead].count() == 0

    # -- concurrency --------------------------------------------------------------------------

    def test_two_threads_updating_one_entity_never_lose_an_update(self, store: Store) -> None:
        (lead,) = self.add_all(store, [Lead(id="c", email="count@example.com", score=0)])
        accepted: list[int] = []
        conflicts: list[int] = []
        lock = threading.Lock()

        barrier = threading.Barrier(2)

        def work() -> None:
            for _ in range(15):
                # Read in one transaction and write in a later one, as an app does between
                # showing a record and saving it: both threads often hold the same version.
                with store.transaction() as tx:
                    current = tx[Lead].get("c")
                barrier.wait(timeout=30)
                try:
                    with store.transaction() as tx:
                        tx[Lead].update(attrs.evolve(current, score=current.score + 1))
                        tx.commit()
                except ConflictError:
                    with lock:
                        conflicts.append(1)
                    continue
                with lock:
                    accepted.append(1)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with store.transaction() as tx:
            final = tx[Lead].get("c")
        assert final.score == len(accepted)
        assert final.version == 1 + len(accepted)
        assert len(accepted) + len(conflicts) == 30
        assert accepted  # someone always wins
        assert conflicts  # the barrier makes both threads read the same version
        del lead

    # -- indexes ------------------------------------------------------------------------------

    def test_indexes_can_be_added_on_declared_fields_only(self, store: Store) -> None:
        self.add_all(store, [Lead(id="a", email="a@example.com", owner_id="u-1")])
        store.add_index(Lead, "owner_id")
        store.add_index("lead", "owner_id")  # idempotent
        with store.transaction() as tx:
            assert [lead.id for lead in tx[Lead].query(field("owner_id").eq("u-1")).items] == ["a"]
        with pytest.raises(RuleError, match="no field"):
            store.add_index(Lead, "owner_id; DROP TABLE crm_lead")
        with pytest.raises(RuleError):
            store.add_index("no-such-kind", "email")

    def test_derived_columns_can_be_indexed_too(self, store: Store) -> None:
        store.add_index(Order, "contact_id", "currency", "status", "ordered_at", "total_minor")
        store.add_index(Order, "total_minor")
        with pytest.raises(RuleError):
            store.add_index(Order, "total_major")
        with pytest.raises(RuleError):
            store.add_index(Lead, "total_minor")  # a derived column of orders only

    # -- analytics ----------------------------------------------------------------------------

    def test_rfm_rows_are_what_the_definition_gives_for_the_stored_orders(self, store: Store) -> None:
        start = datetime(2026, 1, 1, 9, tzinfo=UTC)
        orders = []
        for n in range(23):
            price = Money(Decimal(f"{10 + 7 * (n % 5)}.{n:02d}"), "EUR" if n % 7 else "USD")
            orders.append(
                Order(
                    id=f"o{n:02d}",
                    number=f"N{n}",
                    contact_id=f"c{n % 9}",
                    account_id=f"a{n % 4}" if n % 3 else None,
                    ordered_at=start + timedelta(days=3 * n, microseconds=n),
                    currency=price.currency,
                    lines=(LineItem(quantity=Decimal(1 + n % 2), unit_price=price),),
                    status=OrderStatus.CANCELLED if n == 5 else OrderStatus.PAID,
                )
            )
        self.add_all(store, orders)
        as_of = start + timedelta(days=60)
        counted = (OrderStatus.PAID.value, OrderStatus.FULFILLED.value)
        for customer in ("contact", "account"):
            expected = rfm_rows_of_orders(orders, as_of, currency="EUR", customer=customer, statuses=counted)
            with store.transaction() as tx:
                rows = tx.rfm_rows(as_of, currency="EUR", customer=customer, statuses=counted)
            assert [tuple(row) for row in rows] == expected
        assert len(expected) > 1

    def test_redaction_rewrites_personal_values_and_keeps_the_entries(self, store: Store) -> None:
        ref = EntityRef("lead", "l-1")
        text = 'Called Ada Lovelace at ada@example.com about "the offer"'
        other = store.for_tenant("other")
        for view in (store, other):
            with view.transaction(actor="u-1") as tx:
                plain = NoteRecorded(entity=ref, text="nothing personal")
                tx.record(NoteRecorded(entity=ref, text=text), plain)
                tx.commit()
        with store.transaction() as tx:
            before = tx.audit(entity=ref)
            assert tx.redact_audit(["ada@example.com", "Ada Lovelace"], "[erased]") == 1
            assert tx.redact_audit(["ada@example.com"], "[erased]") == 0  # nothing left to rewrite
            tx.commit()
        with store.transaction() as tx:
            after = tx.audit(entity=ref)
        assert [entry.event.text for entry in after] == [  # type: ignore[attr-defined]
            'Called [erased] at [erased] about "the offer"',
            "nothing personal",
        ]
        for old, new in zip(before, after, strict=True):
            assert (new.sequence, new.event.id, new.event.at, new.event.actor) == (
                old.sequence,
                old.event.id,
                old.event.at,
                old.event.actor,
            )
        with other.transaction() as tx:  # another tenant's log is not touched
            assert tx.audit(entity=ref)[0].event.text == text  # type: ignore[attr-defined]

    def test_redaction_leaves_what_identifies_an_entry_and_every_entry_reads_back(self, store: Store) -> None:
        # The values also occur in the entries' time ("10-11"), record ("lead", "l-10-11"), actor and
        # event type ("note"): only the events' texts are rewritten, so every entry still reads back,
        # as the same event about the same record.
        at = datetime(2026, 10, 11, 5, 0, tzinfo=UTC)
        ref = EntityRef("lead", "l-10-11")
        note = NoteRecorded(entity=ref, at=at, actor="u-10-11", text="met on 10-11 about the lead, see note")
        created = EntityCreated(entity=EntityRef("lead", "l-2"), at=at)
        with store.transaction() as tx:
            tx.record(note, created)
            tx.commit()
        with store.transaction() as tx:
            assert tx.redact_audit(["10-11", "lead", "note"], "[x]") == 1
            tx.commit()
        with store.transaction() as tx:
            entries = tx.audit(since=at, limit=10)
            filed = tx.audit(entity=ref)
        assert [entry.event for entry in entries] == [
            attrs.evolve(note, text="met on [x] about the [x], see [x]"),
            created,
        ]
        assert filed == entries[:1]

    def test_redaction_refuses_values_that_would_erase_too_much(self, store: Store) -> None:
        with store.transaction() as tx:
            for values in ["ada@example.com", ["a"], [""], [7]]:
                with pytest.raises(ValidationError, match="values"):
                    tx.redact_audit(values)  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="placeholder"):
                tx.redact_audit(["ada"], "ada!")
            assert tx.redact_audit([]) == 0

    # -- tenants ------------------------------------------------------------------------------

    def test_a_store_without_a_tenant_is_the_default_tenant(self, store: Store) -> None:
        assert store.tenant == ""
        self.add_all(store, [Lead(id="d", email="d@example.com")])
        with store.for_tenant("").transaction() as tx:
            assert tx[Lead].get("d").email == "d@example.com"
        with store.for_tenant("acme").transaction() as tx:
            assert tx[Lead].count() == 0

    def test_tenants_see_and_change_only_their_own_records(self, store: Store) -> None:
        acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
        self.add_all(acme, [Lead(id="same-id", email="a@acme.example", country="DE")])
        self.add_all(globex, [Lead(id="same-id", email="g@globex.example", country="DE")])
        with acme.transaction() as tx:
            tx.state.put("routing", "turn", 1, expected_version=None)
            tx.commit()
        for view, email in ((acme, "a@acme.example"), (globex, "g@globex.example")):
            with view.transaction() as tx:
                assert tx[Lead].get("same-id").email == email
                assert [lead.email for lead in tx[Lead].query(field("country").eq("DE")).items] == [email]
                assert tx[Lead].count() == 1
                assert [entry.event.entity.id for entry in tx.audit()] == ["same-id"]
        with globex.transaction() as tx:
            assert tx.state.get("routing", "turn") is None
            tx[Lead].delete(tx[Lead].get("same-id"))
            tx.commit()
        with acme.transaction() as tx:
            assert tx[Lead].get("same-id").email == "a@acme.example"  # untouched by globex's delete

    def test_an_id_or_cursor_from_another_tenant_is_refused(self, store: Store) -> None:
        acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
        (stored,) = self.add_all(acme, [Lead(id="acme-1", email="a@acme.example")])
        self.add_all(acme, [Lead(id=f"acme-{n}", email=f"p{n}@acme.example") for n in range(2, 6)])
        with acme.transaction() as tx:
            cursor = tx[Lead].query(limit=2).next_cursor
        assert cursor is not None
        with globex.transaction() as tx:
            with pytest.raises(NotFound):
                tx[Lead].get("acme-1")
            with pytest.raises(NotFound):
                tx[Lead].update(attrs.evolve(stored, score=99))
            with pytest.raises(NotFound):
                tx[Lead].delete(stored)
            with pytest.raises(ValidationError, match="another tenant"):
                tx[Lead].query(limit=2, after=cursor)
            report = tx[Lead].bulk_add([stored])  # its stored version says it belongs elsewhere
            assert report.rejected
        with acme.transaction() as tx:
            assert tx[Lead].get("acme-1") == stored

    def test_tenant_ids_are_checked(self, store: Store) -> None:
        for bad in [" acme", "a" * 65, "a/b", "acme\x00", 7, "-acme"]:
            with pytest.raises(ValidationError):
                store.for_tenant(bad)  # type: ignore[arg-type]

    def test_no_condition_reaches_another_tenants_records(self, store: Store) -> None:
        acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
        mine = {lead.id for lead in self.add_all(acme, _dataset(40, seed=5))}
        theirs = self.add_all(globex, _dataset(40, seed=6))
        escapes = st.sampled_from(
            [
                Predicate("id", Op.EXISTS, value=True),
                Predicate("id", Op.IN, [lead.id for lead in theirs[:10]]),
                Not(Predicate("id", Op.EXISTS, value=True)),
            ]
        )
        conditions = st.one_of(
            _CONDITIONS,
            st.tuples(_CONDITIONS, escapes).map(lambda pair: AnyOf(list(pair))),
            st.tuples(escapes, _CONDITIONS).map(lambda pair: AnyOf(list(pair))),
        )

        @given(conditions, st.sampled_from([["id"], ["score", "id"], [("created_at", "desc")]]))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(condition: Condition, order_by: Any) -> None:
            with acme.transaction() as tx:
                page = tx[Lead].query(condition, order_by=order_by, limit=7)
                seen = {lead.id for lead in page.items}
                while page.next_cursor is not None:
                    page = tx[Lead].query(condition, order_by=order_by, limit=7, after=page.next_cursor)
                    seen |= {lead.id for lead in page.items}
                assert seen <= mine
                assert tx[Lead].count(condition) == len(seen)

        check()

    # -- record visibility (access contexts) ------------------------------------------------------

    @staticmethod
    def _team_store(store: Store) -> tuple[Store, dict[str, Store]]:
        """Leads of two members of team DE, one of team FR, and one in the shared queue."""
        leads = [
            Lead(id="ann-1", email="a1@example.com", owner_id="ann", country="DE", score=10),
            Lead(id="ann-2", email="a2@example.com", owner_id="ann", country="FR", score=20),
            Lead(id="bob-1", email="b1@example.com", owner_id="bob", country="DE", score=30),
            Lead(id="cem-1", email="c1@example.com", owner_id="cem", country="FR", score=40),
            Lead(id="queue-1", email="q1@example.com", country="DE", score=50),
        ]
        StoreConformance.add_all(store, leads)
        policy = AccessPolicy(
            sharing=[
                SharingRule(name="fr-sees-fr", kind="lead", teams=["fr"], condition=field("country").eq("FR"))
            ],
            restricted=[FieldRestriction(kind="lead", field="score", roles=[Role.MANAGER])],
        )
        people = {
            "ann": Principal(user_id="ann", role=Role.MEMBER, teams=["de"]),
            "cem": Principal(user_id="cem", role=Role.MEMBER, teams=["fr"]),
            "dora": Principal(user_id="dora", role=Role.MANAGER, teams=["de"], team_members=["ann", "bob"]),
            "root": Principal(user_id="root", role=Role.ADMIN),
            "viewer": Principal(user_id="viewer", role=Role.READ_ONLY, teams=["de"]),
        }
        return store, {name: store.with_access(p, policy) for name, p in people.items()}

    def test_each_user_sees_own_team_shared_and_unowned_records_only(self, store: Store) -> None:
        _, views = self._team_store(store)
        expected = {
            "ann": ["ann-1", "ann-2", "queue-1"],
            "cem": ["ann-2", "cem-1", "queue-1"],  # FR leads are shared with team fr
            "dora": ["ann-1", "ann-2", "bob-1", "queue-1"],
            "root": ["ann-1", "ann-2", "bob-1", "cem-1", "queue-1"],
            "viewer": ["queue-1"],
        }
        for name, ids in expected.items():
            with views[name].transaction() as tx:
                assert [lead.id for lead in tx[Lead].query(order_by=["id"]).items] == ids, name
                assert tx[Lead].count() == len(ids)
                assert [lead.id for lead in tx[Lead].stream(field("country").eq("DE"))] == [
                    i for i in ids if i in {"ann-1", "bob-1", "queue-1"}
                ]
        with views["ann"].transaction() as tx:
            with pytest.raises(NotFound):
                tx[Lead].get("bob-1")  # another member's record does not exist for ann
            with pytest.raises(NotFound):
                tx[Lead].get_many(["ann-1", "cem-1"])

    def test_hidden_fields_read_empty_and_cannot_be_queried_or_set(self, store: Store) -> None:
        _, views = self._team_store(store)
        with views["ann"].transaction() as tx:
            mine = tx[Lead].get("ann-1")
            assert mine.score == 0  # hidden from members: read as its default
            with pytest.raises(PermissionDenied, match="score"):
                tx[Lead].query(field("score").gt(15))
            with pytest.raises(PermissionDenied):
                tx[Lead].query(order_by=["score"])
        with views["ann"].transaction() as tx:
            renamed = tx[Lead].update(attrs.evolve(mine, company="Renamed GmbH"))
            tx.commit()
        assert renamed.score == 0
        with views["dora"].transaction() as tx:
            stored = tx[Lead].get("ann-1")
            assert (stored.company, stored.score) == ("Renamed GmbH", 10)  # the hidden value was kept
        with views["ann"].transaction() as tx, pytest.raises(PermissionDenied, match="score"):
            tx[Lead].update(attrs.evolve(tx[Lead].get("ann-1"), score=99))

    def test_writes_outside_ones_rights_are_refused_and_audited(self, store: Store) -> None:
        _, views = self._team_store(store)
        with views["cem"].transaction() as tx:
            shared = tx[Lead].get("ann-2")  # visible through a read-only sharing rule
            with pytest.raises(PermissionDenied):
                tx[Lead].update(attrs.evolve(shared, company="Taken over"))
            with pytest.raises(PermissionDenied):
                tx[Lead].delete(shared)
            with pytest.raises(PermissionDenied):
                tx[Lead].add(Lead(email="new@example.com", owner_id="ann"))
            # the transaction is rolled back: the denials are kept all the same
        with views["viewer"].transaction() as tx, pytest.raises(PermissionDenied):
            tx[Lead].add(Lead(email="viewer@example.com"))
        with views["ann"].transaction() as tx:
            mine = Lead(email="m@example.com", owner_id="ann")
            report = tx[Lead].bulk_add([mine, Lead(email="b@example.com", owner_id="bob")])
            assert [row.index for row in report.rejected] == [1]
            assert isinstance(report.rejected[0].error, PermissionDenied)
            tx.commit()
        with views["root"].transaction() as tx:
            denied = [e.event for e in tx.audit(limit=10_000) if isinstance(e.event, AccessDenied)]
        assert [(event.actor, event.action) for event in denied] == [
            ("cem", "update"),
            ("cem", "delete"),
            ("cem", "add"),
            ("viewer", "add"),
            ("ann", "add"),
        ]
        with views["ann"].transaction() as tx:
            with pytest.raises(PermissionDenied):
                tx.audit()  # only admins read the whole log
            history = tx.audit(entity=EntityRef("lead", "ann-1"))
            assert [entry.event.entity.id for entry in history] == ["ann-1"]
            with pytest.raises(PermissionDenied):
                tx.redact_audit(["a1@example.com"])

    def test_queries_through_an_access_context_match_the_rules(self, store: Store) -> None:
        rng = random.Random(17)  # noqa: S311 - test data
        owners = ["ann", "bob", "cem", None]
        leads = [
            attrs.evolve(lead, owner_id=rng.choice(owners)) for lead in _dataset(60, seed=23)
        ]
        self.add_all(store, leads)
        policy = AccessPolicy(
            sharing=[SharingRule(name="de", kind="lead", teams=["de"], condition=field("country").eq("DE"))]
        )
        ann = store.with_access(Principal(user_id="ann", role=Role.MEMBER, teams=["de"]), policy)
        visible = {
            lead.id for lead in leads if lead.owner_id in {None, "ann"} or lead.country == "DE"
        }

        @given(_CONDITIONS)
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(condition: Condition) -> None:
            held = [lead.id for lead in leads if _SCHEMA.evaluate(condition, lead, now=START)]
            expected = sorted(set(held) & visible)
            with ann.transaction() as tx:
                found = tx[Lead].query(condition, order_by=["id"], limit=1000).items
                assert [lead.id for lead in found] == expected
                assert tx[Lead].count(condition) == len(expected)

        check()

    # -- state (tx.state) ---------------------------------------------------------------------

    def test_state_put_get_and_compare_and_set(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.state.get("routing", "emea") is None
            first = tx.state.put("routing", "emea", {"turn": 1, "who": ["u1", "ü"]}, expected_version=None)
            assert first.version == 1
            tx.commit()
        with store.transaction() as tx:
            entry = tx.state.get("routing", "emea")
            assert entry is not None
            assert entry.value == {"turn": 1, "who": ["u1", "ü"]}
            assert entry.version == 1
            assert tx.state.put("routing", "emea", [2], expected_version=1).version == 2
            with pytest.raises(ConflictError):
                tx.state.put("routing", "emea", [3], expected_version=1)
            with pytest.raises(ConflictError):
                tx.state.put("routing", "emea", [3], expected_version=None)
            tx.commit()
        with store.transaction() as tx:
            entry = tx.state.get("routing", "emea")
            assert entry is not None
            assert (entry.value, entry.version) == ([2], 2)

    def test_state_changes_follow_the_transaction(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.state.put("jobs", "a", 1, expected_version=None)
            tx.commit()
        with store.transaction() as tx:
            tx.state.put("jobs", "a", 2, expected_version=1)
            tx.state.put("jobs", "b", 1, expected_version=None)
            assert [e.key for e in tx.state.scan("jobs")] == ["a", "b"]  # a transaction sees its own writes
        with store.transaction() as tx:  # the one above rolled back
            assert [(e.key, e.value, e.version) for e in tx.state.scan("jobs")] == [("a", 1, 1)]

    def test_state_delete_checks_the_version(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.state.put("jobs", "a", "x", expected_version=None)
            with pytest.raises(ConflictError):
                tx.state.delete("jobs", "a", expected_version=2)
            tx.state.delete("jobs", "a", expected_version=1)
            with pytest.raises(ConflictError):
                tx.state.delete("jobs", "a", expected_version=1)
            assert tx.state.get("jobs", "a") is None
            tx.commit()

    def test_state_scan_is_in_code_point_order_within_bounds(self, store: Store) -> None:
        keys = ["2026-01-02T00:00:00Z|b", "2026-01-01T00:00:00Z|a", "Z", "a", "é", "😀", "A b"]
        with store.transaction() as tx:
            for key in keys:
                tx.state.put("due", key, key, expected_version=None)
            tx.state.put("other", "2026-01-01", 0, expected_version=None)
            tx.commit()
        with store.transaction() as tx:
            assert [e.key for e in tx.state.scan("due")] == sorted(keys)
            due = tx.state.scan("due", start="2026-01-01", stop="2026-01-02T00:00:00Z|c")
            assert [e.value for e in due] == ["2026-01-01T00:00:00Z|a", "2026-01-02T00:00:00Z|b"]
            assert len(tx.state.scan("due", limit=2)) == 2
            assert tx.state.scan("nothing-here") == []

    def test_state_increment_counts_from_zero_and_refuses_non_integers(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.state.increment("turns", "t") == 1
            assert tx.state.increment("turns", "t", by=4) == 5
            tx.state.put("turns", "text", "seven", expected_version=None)
            with pytest.raises(ValidationError):
                tx.state.increment("turns", "text")
            with pytest.raises(ValidationError):
                tx.state.increment("turns", "t", by=1.5)  # type: ignore[arg-type]
            tx.commit()
        with store.transaction() as tx:
            entry = tx.state.get("turns", "t")
            assert entry is not None
            assert (entry.value, entry.version) == (5, 2)

    @pytest.mark.parametrize(
        ("namespace", "key", "value", "path"),
        [
            ("", "k", 1, "namespace"),
            ("n", "", 1, "key"),
            ("n", "k" * 501, 1, "key"),
            ("n", "a\x00b", 1, "key"),
            ("n", 7, 1, "key"),
            ("n", "k", float("nan"), "value"),
            ("n", "k", {"when": START}, "value"),
            ("n", "k", {1, 2}, "value"),
        ],
    )
    def test_state_refuses_bad_names_and_values(
        self, store: Store, namespace: Any, key: Any, value: Any, path: str
    ) -> None:
        with store.transaction() as tx:
            with pytest.raises(ValidationError) as caught:
                tx.state.put(namespace, key, value, expected_version=None)
            assert caught.value.paths == (path,)
            assert tx.state.scan("n") == []

    def test_any_json_value_round_trips_through_state(self, store: Store) -> None:
        finite = st.floats(allow_nan=False, allow_infinity=False)
        scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
        values = st.recursive(
            scalars,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
            max_leaves=8,
        )

        @given(values)
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(value: Any) -> None:
            with store.transaction() as tx:
                stored = tx.state.put("values", "v", value, expected_version=None)
                read = tx.state.get("values", "v")
                assert read is not None
                assert read.value == stored.value == value
                # rolled back: the next example starts empty

        check()

    def test_two_threads_incrementing_never_take_the_same_turn(self, store: Store) -> None:
        taken: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(25):
                with store.transaction() as tx:
                    turn = tx.state.increment("turns", "team")
                    tx.commit()
                with lock:
                    taken.append(turn)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(taken) == list(range(1, 51))


def _python_order(leads: list[Lead], keys: list[tuple[str, str]]) -> list[Lead]:
    """The documented ordering, computed in Python: missing first ascending, last descending, then id."""
    ordered = sorted(leads, key=lambda lead: lead.id)
    for name, direction in reversed(keys):
        if name == "id":
            continue
        present = [lead for lead in ordered if _SCHEMA.read(name, lead) is not None]
        missing = [lead for lead in ordered if _SCHEMA.read(name, lead) is None]
        present.sort(key=lambda lead: _SCHEMA.read(name, lead), reverse=direction == "desc")
        ordered = missing + present if direction == "asc" else present + missing
    return ordered
