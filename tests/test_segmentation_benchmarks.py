"""The segmentation benchmark cases run and every contender gives the same answers.

No timing is asserted: these tests say the cases measure the same work, not how fast it is.
"""

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def harness() -> Iterator[ModuleType]:
    # benchmarks/ sits beside src/, not inside the installed package.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        yield importlib.import_module("benchmarks.harness")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("name", ["segmentation-rfm", "segmentation-btyd", "segmentation-cohorts"])
def test_every_contender_does_the_same_work(harness, name):
    case = harness.load_cases()[name]
    outcome = harness.run_case(case, n=300, repeat=1)
    assert outcome.ok, outcome.problems
    ran = {c.name for c in outcome.contenders if c.status == "ok"}
    assert ran == {c.name for c in case.contenders}
    assert all(c.agrees for c in outcome.contenders)
    assert "crmkit extra memory" in outcome.summary


def test_the_sqlite_push_down_agrees_with_the_hand_written_query(harness):
    case = harness.load_cases()["segmentation-rfm-sql"]
    outcome = harness.run_case(case, n=300, repeat=1)
    assert outcome.ok, outcome.problems
    assert [c.status for c in outcome.contenders] == ["ok", "ok"]
    assert all(c.agrees for c in outcome.contenders)
    assert "covering index" in outcome.summary


def test_the_postgres_push_down_agrees_with_the_hand_written_query(harness, postgres_url, monkeypatch):
    monkeypatch.setenv("CRMKIT_BENCH_POSTGRES_URL", postgres_url)
    case = harness.load_cases()["segmentation-rfm-postgres"]
    outcome = harness.run_case(case, n=120, repeat=1)
    assert outcome.ok, outcome.problems
    assert [c.status for c in outcome.contenders] == ["ok", "ok"]
    assert all(c.agrees for c in outcome.contenders)


@pytest.mark.usefixtures("harness")
def test_the_orders_are_a_prefix_stream_of_about_ten_orders_per_customer():
    cases = importlib.import_module("benchmarks.segmentation")
    small, large = cases.make_customers(50), cases.make_customers(400)
    assert large[:50] == small
    assert 5 < len(large.orders) / len(large) < 15
    assert all(row.ordered_at < cases.AS_OF for row in large.orders)
