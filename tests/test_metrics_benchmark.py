"""The metrics benchmark cases run and every contender agrees (no timing is asserted)."""

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
        yield importlib.import_module("benchmarks.metrics")


def test_the_customers_case_agrees_with_the_single_pass_computation(cases):
    harness = importlib.import_module("benchmarks.harness")
    assert {"metrics-bgnbd", "metrics-customers"} <= set(harness.load_cases())
    case = next(case for case in cases.CASES if case.name == "metrics-customers")
    outcome = harness.run_case(case, n=5_000, repeat=1)
    assert outcome.ok, outcome.problems
    assert {c.name for c in outcome.contenders if c.status == "ok"} == {"crmkit", "single-pass"}


def test_the_bgnbd_case_finds_the_published_parameters(cases):
    harness = importlib.import_module("benchmarks.harness")
    case = next(case for case in cases.CASES if case.name == "metrics-bgnbd")
    outcome = harness.run_case(case, size="tiny", repeat=1)
    assert outcome.ok, outcome.problems
    crmkit = next(c for c in outcome.contenders if c.name == "crmkit")
    assert crmkit.answers is not None
    assert crmkit.answers[0] == (0.243, 4.414, 0.793, 2.426)


def test_the_orders_come_from_a_fixed_seed_and_smaller_sizes_are_a_prefix(cases):
    orders = cases.make_orders(500)
    assert orders == cases.make_orders(500)
    assert orders[:50] == cases.make_orders(50)
    assert len({order.customer_id for order in orders}) > 400
