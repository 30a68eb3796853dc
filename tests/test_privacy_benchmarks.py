"""The privacy benchmark cases run and every contender gives the same answers (no timing is asserted)."""

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
        yield importlib.import_module("benchmarks.privacy")


@pytest.mark.parametrize(("name", "n"), [("privacy-consent", 500), ("privacy-erasure", 5)])
def test_every_contender_does_the_same_work(cases, name, n):
    harness = importlib.import_module("benchmarks.harness")
    assert name in harness.load_cases()
    case = next(case for case in cases.CASES if case.name == name)
    outcome = harness.run_case(case, n=n, repeat=1)
    assert outcome.ok, outcome.problems
    assert {c.name for c in outcome.contenders if c.status == "ok"} == {c.name for c in case.contenders}
    assert all(c.agrees for c in outcome.contenders)


def test_the_checks_are_a_seeded_prefix_with_every_answer_represented(cases):
    assert cases.make_checks(50) == cases.make_checks(500)[:50]
    harness = importlib.import_module("benchmarks.harness")
    case = next(case for case in cases.CASES if case.name == "privacy-consent")
    outcome = harness.run_case(case, n=3_000, repeat=1)
    answers = set(outcome.contenders[0].answers)
    assert answers == {"granted", "no_consent", "consent_denied", "consent_withdrawn", "consent_expired"}
