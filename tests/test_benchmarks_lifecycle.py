"""The lifecycle benchmark cases run, every contender agrees, and the memory line is reported.

No timing is asserted: these tests say the cases measure the same work, not how fast it is.
"""

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
        yield importlib.import_module("benchmarks.lifecycle")


@pytest.mark.parametrize("name", ["lifecycle-transition", "lifecycle-create"])
def test_every_contender_does_the_same_work(cases, name):
    harness = importlib.import_module("benchmarks.harness")
    assert name in harness.load_cases()
    case = next(case for case in cases.CASES if case.name == name)
    outcome = harness.run_case(case, n=300, repeat=1, slow_cap=100)
    assert outcome.ok, outcome.problems
    crmkit = next(c for c in outcome.contenders if c.name == "crmkit")
    assert crmkit.status == "ok"
    assert crmkit.n == 300
    assert {c.name for c in outcome.contenders if c.status == "ok"} >= {"crmkit", "hand-written"}
    assert all(c.agrees for c in outcome.contenders if c.status == "ok")
    if name == "lifecycle-create":
        assert "memory per lead" in outcome.summary


def test_the_scripts_take_both_paths_and_three_transitions_each(cases):
    leads = cases.make_leads(1_000)
    assert leads == cases.make_leads(1_000)
    assert leads[:10] == cases.make_leads(10)
    converting = sum(lead["score"] >= cases.MIN_SCORE for lead in leads)
    assert 0.5 < converting / len(leads) < 0.9
    assert all(len(script) == cases.TRANSITIONS_PER_LEAD for script in cases.SCRIPTS.values())


def test_being_in_a_lifecycle_adds_no_memory_to_a_crmkit_lead(cases):
    sizes = cases.memory_per_lead(500)
    assert sizes["crmkit-lifecycle-overhead"] < 16  # bytes: allocator noise, no machine object
