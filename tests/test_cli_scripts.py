import csv
import io
import json

import pytest

from crmkit.cli import main
from crmkit.cli._demo import demo
from crmkit.reports import METRICS
from crmkit.storage import open_store


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo')}/demo.db"
    demo(io.StringIO(), size=200, seed=5, store=open_store(url), store_name=url, progress=io.StringIO())
    return url


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_prints_as_text_csv_and_json(store_url, capsys, name):
    code, text, _ = run(capsys, "metrics", name, "--store", store_url, "--as-of", "2026-09-30")
    assert code == 0
    assert text.splitlines()[0]  # a title
    code, out, _ = run(
        capsys, "metrics", name, "--store", store_url, "--as-of", "2026-09-30", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    code, out, _ = run(
        capsys, "metrics", name, "--store", store_url, "--as-of", "2026-09-30", "--format", "json"
    )
    assert code == 0
    records = json.loads(out)
    assert len(records) == len(rows) - 1
    assert all(list(record) == rows[0] for record in records)


def test_metrics_as_of_an_earlier_date_sees_only_what_had_happened(store_url, capsys):
    _, later, _ = run(
        capsys, "metrics", "revenue", "--store", store_url, "--as-of", "2026-09-30", "--format", "json"
    )
    _, earlier, _ = run(
        capsys,
        "metrics",
        "revenue",
        "--store",
        store_url,
        "--as-of",
        "2026-06-30",
        "--format",
        "json",
        "--months",
        "3",
    )
    assert [row["period"] for row in json.loads(earlier)] == ["2026-04", "2026-05", "2026-06"]
    assert {row["period"]: row for row in json.loads(later)}["2026-05"] == json.loads(earlier)[1]


def test_sla_in_business_hours_differs_from_wall_clock_hours(store_url, capsys):
    args = ("metrics", "sla", "--store", store_url, "--as-of", "2026-09-30", "--format", "json")
    _, wall, _ = run(capsys, *args)
    _, business, _ = run(capsys, *args, "--timezone", "Europe/Berlin", "--office-hours", "08:00-18:00")
    assert json.loads(wall) != json.loads(business)


def test_segment_rfm_lists_one_segments_members(store_url, capsys):
    code, out, _ = run(
        capsys, "segment", "rfm", "--store", store_url, "--as-of", "2026-09-30", "--format", "json"
    )
    assert code == 0
    everyone = json.loads(out)
    code, out, _ = run(
        capsys,
        "segment",
        "rfm",
        "--segment",
        "champions",
        "--store",
        store_url,
        "--as-of",
        "2026-09-30",
        "--format",
        "csv",
    )
    champions = list(csv.DictReader(io.StringIO(out)))
    assert champions
    assert {row["customer_id"] for row in champions} == {
        row["customer_id"] for row in everyone if row["segment"] == "champions"
    }
    assert all(row["r"] == "5" for row in champions)


def test_segment_rule_runs_a_condition_in_the_store(store_url, capsys, tmp_path):
    where = '{"field": "country", "op": "eq", "value": "AT"}'
    code, out, _ = run(
        capsys,
        "segment",
        "rule",
        "--entity",
        "lead",
        "--where",
        where,
        "--store",
        store_url,
        "--format",
        "json",
    )
    assert code == 0
    members = json.loads(out)
    assert members
    assert {row["country"] for row in members} == {"AT"}
    rule = tmp_path / "austria.json"
    rule.write_text(json.dumps({"name": "austria", "entity": "lead", "condition": json.loads(where)}))
    _, out, _ = run(capsys, "segment", "rule", "--rule", str(rule), "--store", store_url, "--format", "json")
    assert json.loads(out) == members


def test_report_prints_the_kpi_summary(store_url, capsys):
    code, out, _ = run(capsys, "report", "--store", store_url, "--as-of", "2026-09-30")
    assert code == 0
    assert out.startswith("KPI summary as of 2026-09-30, 2025-10 to 2026-09, amounts in EUR")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "cac", "--as-of", "2026-02-30"], "crmkit metrics: --as-of '2026-02-30' is not a date"),
        (
            ["metrics", "cac", "--as-of", "2026-02-03T10:00"],
            "crmkit metrics: --as-of '2026-02-03T10:00' has no UTC",
        ),
        (["metrics", "cac", "--months", "0"], "crmkit metrics: --months is from 1 to 120, got 0"),
        (
            ["metrics", "cac", "--timezone", "Mars/Olympus"],
            "crmkit metrics: --timezone 'Mars/Olympus' is not",
        ),
        (["metrics", "sla", "--office-hours", "9-5"], "crmkit metrics: --office-hours is HH:MM-HH:MM"),
        (["segment", "rfm", "--segment", "gold"], "crmkit segment: no RFM segment 'gold'"),
        (["segment", "rule"], "crmkit segment: give the segment's condition with --where"),
        (["segment", "rule", "--where", "{"], "crmkit segment: --where is not JSON"),
        (["segment", "rule", "--where", '{"field": "shoe", "op": "eq", "value": 1}'], "crmkit segment: "),
        (["report", "--store", "nosuch://x"], "crmkit report: no storage adapter for the scheme 'nosuch'"),
    ],
)
def test_user_errors_exit_with_1_and_one_line(store_url, capsys, args, message):
    if "--store" not in args:
        args = [*args, "--store", store_url]
    code, _, err = run(capsys, *args)
    assert code == 1
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_an_unknown_metric_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["metrics", "happiness"])
    assert caught.value.code == 2
    capsys.readouterr()


def test_clv_adds_the_predictive_value_of_the_bg_nbd_and_gamma_gamma_models(store_url, capsys):
    _, out, _ = run(capsys, "metrics", "clv", "--store", store_url, "--as-of", "2026-09-30", "--format", "json")
    (clv,) = json.loads(out)
    assert clv["models_converged"] is True
    assert 0 < clv["p_alive"] <= 1
    assert float(clv["predictive_clv_12m"]) > 0
    assert float(clv["historical_clv"]) > 0
