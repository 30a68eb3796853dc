"""The lead benchmarks run at a small size and every contender agrees with crmkit."""

import pytest
from benchmarks.harness import run_case
from benchmarks.leads import CASES


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_lead_case_runs_and_its_contenders_agree(case):
    outcome = run_case(case, n=300, repeat=1)
    assert outcome.problems == []
    ran = [result for result in outcome.contenders if result.status == "ok"]
    assert [result.name for result in ran][:2] == [contender.name for contender in case.contenders][:2]
    assert all(result.agrees for result in ran)
    assert outcome.summary
