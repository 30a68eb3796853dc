"""The workflows benchmark cases run and every contender agrees (no timing is asserted)."""

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
        yield importlib.import_module("benchmarks.workflows")


@pytest.mark.parametrize(
    "name", ["workflows-deadlines-1d", "workflows-deadlines-30d", "workflows-deadlines-365d"]
)
def test_every_deadline_contender_gives_the_same_deadlines(cases, name):
    harness = importlib.import_module("benchmarks.harness")
    assert name in harness.load_cases()
    case = next(case for case in cases.CASES if case.name == name)
    outcome = harness.run_case(case, n=200, repeat=1, slow_cap=10)
    assert outcome.ok, outcome.problems
    ran = {c.name for c in outcome.contenders if c.status == "ok"}
    assert {"crmkit", "day-walk"} <= ran
    assert all(c.agrees for c in outcome.contenders if c.status == "ok")


def test_the_engine_case_starts_runs_and_agrees_with_itself(cases):
    harness = importlib.import_module("benchmarks.harness")
    case = next(case for case in cases.CASES if case.name == "workflows-engine")
    outcome = harness.run_case(case, n=200, repeat=1)
    assert outcome.ok, outcome.problems
    assert "started" in outcome.summary
