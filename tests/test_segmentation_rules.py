"""Rule segments in the condition language: in memory, through a store (SQL), snapshots and their difference."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.conditions import field
from crmkit.entities import Address, Contact
from crmkit.errors import RuleError, ValidationError
from crmkit.segmentation import RuleSegment, Snapshot, SnapshotDiff, diff_snapshots
from crmkit.storage import open_store

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DACH = RuleSegment(
    "dach_newsletter",
    field("address.country").in_(["DE", "AT", "CH"]) & field("tags").contains("newsletter"),
    description="German-speaking newsletter readers",
)


def contact(identifier, country, *tags, stage="customer"):
    return Contact(
        id=identifier,
        created_at=NOW,
        email=f"{identifier}@example.com",
        address=Address(country=country),
        tags=frozenset(tags),
        stage=stage,
    )


CONTACTS = [
    contact("ada", "DE", "newsletter"),
    contact("bob", "AT"),
    contact("cy", "FR", "newsletter"),
    contact("dee", "CH", "newsletter", "vip"),
]


def test_a_segment_selects_the_records_its_condition_holds_for_in_memory():
    assert DACH.members(CONTACTS) == {"ada", "dee"}
    assert DACH.matches(CONTACTS[0])
    assert not DACH.matches(CONTACTS[1])


def test_a_segment_explains_why_a_record_is_out():
    explanation = DACH.explain(CONTACTS[1])
    assert not explanation.held
    assert [p.condition.field for p in explanation.failed] == ["tags"]


def test_a_segment_round_trips_through_json():
    text = json.dumps(DACH.to_json())
    assert RuleSegment.from_json(text) == DACH
    assert RuleSegment.from_json(json.loads(text)).members(CONTACTS) == {"ada", "dee"}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"name": "x", "condition": {"field": "shoe_size", "op": "eq", "value": 3}}, "condition.field"),
        (
            {
                "name": "x",
                "condition": {
                    "all": [
                        {"field": "stage", "op": "eq", "value": "a"},
                        {"field": "tags", "op": "gt", "value": "v"},
                    ]
                },
            },
            "condition.all[1].op",
        ),
        ({"name": "x", "condition": {"any": []}}, "condition.any"),
        ({"name": "", "condition": {"field": "stage", "op": "exists"}}, "name"),
        ({"name": "x", "entity": "unicorn", "condition": {"field": "stage", "op": "exists"}}, "entity"),
        ({"name": "x"}, "condition"),
        ({"name": "x", "condition": {"field": "stage", "op": "exists"}, "owner": "me"}, ""),
        ({"name": "x", "condition": {"field": "stage", "op": "exists"}, "description": 3}, "description"),
    ],
)
def test_a_bad_segment_is_a_rule_error_with_the_path(data, path):
    with pytest.raises(RuleError) as caught:
        RuleSegment.from_json(data)
    assert caught.value.path.startswith(path)


def test_a_segment_reads_declared_fields_of_other_entity_kinds():
    big = RuleSegment("big_accounts", field("employees").ge(500), entity="account")
    assert big.entity == "account"
    with pytest.raises(RuleError):
        RuleSegment("bad", field("employees").ge(500), entity="contact")


def test_snapshots_say_who_entered_and_who_left():
    before = DACH.snapshot(CONTACTS, at=NOW)
    changed = [contact("ada", "DE"), CONTACTS[1], contact("cy", "DE", "newsletter"), CONTACTS[3]]
    with use_clock(FixedClock(datetime(2026, 3, 2, tzinfo=UTC))):
        after = DACH.snapshot(changed)
    assert after.at == datetime(2026, 3, 2, tzinfo=UTC)
    assert diff_snapshots(before, after) == SnapshotDiff(
        entered=frozenset({"cy"}), left=frozenset({"ada"}), stayed=frozenset({"dee"})
    )


def test_snapshots_round_trip_through_json_and_refuse_mismatched_diffs():
    snapshot = DACH.snapshot(CONTACTS, at=NOW)
    assert Snapshot.from_json(json.loads(json.dumps(snapshot.to_json()))) == snapshot
    other = Snapshot("other", NOW, frozenset())
    with pytest.raises(ValidationError) as caught:
        diff_snapshots(snapshot, other)
    assert caught.value.paths == ("after.segment",)
    earlier = Snapshot(snapshot.segment, datetime(2026, 1, 1, tzinfo=UTC), frozenset())
    with pytest.raises(ValidationError) as caught:
        diff_snapshots(snapshot, earlier)
    assert caught.value.paths == ("after.at",)


@pytest.mark.parametrize(
    "data",
    [
        {"segment": "s", "at": "2026-01-01T00:00:00", "members": []},
        {"segment": "s", "at": "x", "members": []},
        {},
    ],
)
def test_a_bad_snapshot_is_a_validation_error(data):
    with pytest.raises(ValidationError):
        Snapshot.from_json(data)


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_a_segment_runs_in_the_store_and_agrees_with_memory(url, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'crm.db'}" if url == "sqlite" else url)
    with store.transaction() as tx:
        tx[Contact].bulk_add(CONTACTS, strict=True)
        tx.commit()
    with store.transaction() as tx:
        snapshot = DACH.snapshot(tx[Contact], at=NOW)
    assert snapshot.members == DACH.members(CONTACTS) == {"ada", "dee"}


class FakeSource:
    """A port double that records the condition it was asked for."""

    def __init__(self, records):
        self.records = records
        self.asked = []

    def stream(self, where=None):
        self.asked.append(where)
        return [r for r in self.records if DACH.matches(r)]


def test_the_store_is_given_the_condition_not_asked_for_everything():
    source = FakeSource(CONTACTS)
    assert DACH.snapshot(source, at=NOW).members == {"ada", "dee"}
    assert source.asked == [DACH.condition]


ids = st.frozensets(st.sampled_from("abcdefgh"))


@settings(max_examples=50, deadline=None)
@given(ids, ids)
def test_entered_left_and_stayed_partition_the_two_snapshots(first, second):
    diff = diff_snapshots(Snapshot("s", NOW, first), Snapshot("s", NOW, second))
    assert diff.entered | diff.stayed == second
    assert diff.left | diff.stayed == first
    assert not (diff.entered & diff.left)
