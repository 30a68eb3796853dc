"""The benchmark harness runs, reports in the documented shape, and refuses contenders that disagree.

No timing is asserted: these tests say the harness measures the right work, not how fast it is.
"""

import contextlib
import importlib
import importlib.util
import io
import json
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


@pytest.fixture(scope="module")
def tiny_report(harness, tmp_path_factory):
    # One run shared by the tests that read it: the slow peers take a second or two even at tiny size.
    path = tmp_path_factory.mktemp("benchmarks") / "results.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        code = harness.main(["--size", "tiny", "--case", "conditions", "--repeat", "2", "--json", str(path)])
    return code, json.loads(path.read_text(encoding="utf-8")), printed.getvalue()


def test_the_conditions_case_runs_at_tiny_size_and_exits_zero(tiny_report):
    code, _, printed = tiny_report
    assert code == 0
    assert "case conditions" in printed
    assert "PROBLEM" not in printed


def test_the_report_names_the_run_the_machine_and_python(tiny_report):
    _, report, _ = tiny_report
    assert report["schema_version"] == 1
    assert {"platform", "machine", "system"} <= set(report["machine"])
    assert report["python"]["version"].count(".") == 2
    (case,) = report["cases"]
    assert case["case"] == "conditions"
    assert case["size"] == "tiny"
    assert case["n"] == 2_000
    assert case["repeat"] == 2
    assert case["ok"] is True
    assert case["problems"] == []


def test_every_contender_that_ran_has_stats_and_agrees(tiny_report):
    _, report, _ = tiny_report
    (case,) = report["cases"]
    ran = [c for c in case["contenders"] if c["status"] == "ok"]
    assert {c["name"] for c in ran} >= {"lambdas"}
    for contender in ran:
        assert len(contender["times_s"]) == 2
        for stat in ("time_s", "throughput_per_s"):
            assert contender[stat]["min"] <= contender[stat]["median"] <= contender[stat]["max"]
        assert contender["agrees"] is True
        assert contender["n"] <= case["n"]
    assert len({c["common_checksum"] for c in ran}) == 1
    for contender in case["contenders"]:
        if contender["status"] == "skipped":
            assert contender["reason"]
        assert contender["status"] in {"ok", "skipped"}


def test_crmkit_runs_and_its_ratios_are_reported_once_its_condition_module_exists(tiny_report):
    if importlib.util.find_spec("crmkit.conditions") is None:
        pytest.skip("crmkit.conditions is not written yet")
    _, report, _ = tiny_report
    (case,) = report["cases"]
    crmkit = next(c for c in case["contenders"] if c["name"] == "crmkit")
    assert crmkit["status"] == "ok"
    assert crmkit["n"] == case["n"]
    peers = {c["name"] for c in case["contenders"] if c["name"] != "crmkit"}
    assert set(case["ratios"]) == peers
    assert case["ratios"]["lambdas"] > 0


@pytest.mark.usefixtures("harness")
def test_the_routing_rules_match_a_realistic_share_of_leads():
    conditions = importlib.import_module("benchmarks.conditions")
    leads = conditions.make_leads(2_000)
    assert leads == conditions.make_leads(2_000)  # a fixed seed
    assert leads[:100] == conditions.make_leads(100)  # smaller sizes are a prefix
    lambdas = next(c for c in conditions.CASE.contenders if c.name == "lambdas")
    answers = lambdas.prepare(leads)()
    matched = [a for a in answers if a is not None]
    assert 0.2 < len(matched) / len(answers) < 0.8
    assert max(matched) >= 40  # late rules fire too


def _case(harness, *contenders):
    return harness.Case(
        name="fake",
        description="a case for the harness's own tests",
        unit="item",
        sizes={"tiny": 10, "small": 10, "full": 10},
        make_items=lambda n: list(range(n)),
        contenders=contenders,
    )


def _squares(items):
    return lambda: [i * i for i in items]


def test_contenders_that_disagree_fail_the_run(harness):
    def off_by_one(items):
        return lambda: [i * i + (i == 7) for i in items]

    outcome = harness.run_case(
        _case(harness, harness.Contender("crmkit", _squares), harness.Contender("peer", off_by_one)), repeat=1
    )
    assert not outcome.ok
    (problem,) = outcome.problems
    assert "peer disagrees with crmkit on 1 of 10 items; first at item 7" in problem


def test_a_missing_peer_is_skipped_with_its_reason(harness):
    def missing(_items):
        import not_a_real_peer_library  # noqa: F401, PLC0415

    def skipping(_items):
        reason = "broken on this Python"
        raise harness.Skip(reason)

    outcome = harness.run_case(
        _case(
            harness,
            harness.Contender("crmkit", _squares),
            harness.Contender("missing", missing),
            harness.Contender("skipping", skipping),
        ),
        repeat=1,
    )
    assert outcome.ok
    statuses = {c.name: (c.status, c.reason) for c in outcome.contenders}
    assert statuses["missing"][0] == "skipped"
    assert "not_a_real_peer_library" in statuses["missing"][1]
    assert statuses["skipping"] == ("skipped", "broken on this Python")
    assert outcome.ratios() == {"missing": None, "skipping": None}


def test_a_contender_that_crashes_fails_the_run(harness, capsys):
    def crashing(items):
        return lambda: [1 // 0 for _ in items]

    outcome = harness.run_case(
        _case(harness, harness.Contender("crmkit", _squares), harness.Contender("crashing", crashing)),
        repeat=1,
    )
    capsys.readouterr()
    assert not outcome.ok
    assert "ZeroDivisionError" in outcome.problems[0]


def test_slow_contenders_run_on_a_prefix_and_still_agree(harness):
    outcome = harness.run_case(
        _case(harness, harness.Contender("crmkit", _squares), harness.Contender("slow", _squares, slow=True)),
        repeat=1,
        slow_cap=4,
    )
    assert outcome.ok
    assert [c.n for c in outcome.contenders] == [10, 4]
    assert outcome.common_n() == 4
    assert "slow" in harness.format_table(outcome)
