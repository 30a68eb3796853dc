"""The sales benchmark cases run and every contender gives the same answers (no timing is asserted)."""

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cases() -> Iterator[ModuleType]:
    # benchmarks/ sits beside src/, not inside the installed package.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        patch.setenv("CRMKIT_BENCH_TIMELINE_EVENTS", "3000")
        yield importlib.import_module("benchmarks.sales")


@pytest.mark.parametrize(("name", "n"), [("sales-pricing", 400), ("sales-timeline", 4)])
def test_every_contender_does_the_same_work(cases, name, n):
    harness = importlib.import_module("benchmarks.harness")
    assert name in harness.load_cases()
    case = next(case for case in cases.CASES if case.name == name)
    outcome = harness.run_case(case, n=n, repeat=1)
    assert outcome.ok, outcome.problems
    assert {c.name for c in outcome.contenders if c.status == "ok"} == {c.name for c in case.contenders}
    assert all(c.agrees for c in outcome.contenders)


def test_the_pricing_input_is_a_seeded_prefix_and_uses_all_two_hundred_rules(cases):
    assert cases.make_lines(50) == cases.make_lines(500)[:50]
    assert len(cases.SPECS) == cases.RULE_COUNT == 200
    assert len({spec.name for spec in cases.SPECS}) == 200
