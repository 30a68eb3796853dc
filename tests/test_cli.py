import io
import subprocess
import sys

import pytest

from crmkit import __version__
from crmkit.cli import main
from crmkit.cli._company import AS_OF, SIZES, simulate
from crmkit.cli._demo import ProgressBar, demo
from crmkit.entities import Lead, Order
from crmkit.leads import MemoryRoutingState
from crmkit.storage import open_store


def run_demo(size=150, seed=7):
    out = io.StringIO()
    assert (
        demo(
            out,
            size=size,
            seed=seed,
            store=open_store("memory://"),
            store_name="memory://",
            progress=io.StringIO(),
        )
        == 0
    )
    return out.getvalue()


def kpis(text):
    return text[text.index("KPI summary") : text.index("Done in")]


def test_the_demo_prints_what_happened_and_every_kpi():
    text = run_demo()
    assert "a seeded company (150 lead rows, seed 7), as of 2026-09-30" in text
    assert "rows rejected" in text
    assert "duplicates merged" in text
    assert "turns kept in tx.state" in text
    assert "the escalation workflow escalated" in text
    assert "one customer asked to be forgotten; erase_person removed" in text
    for heading in (
        "Customer acquisition cost by channel",
        "Lead funnel",
        "Retention and churn by month",
        "Cohort retention",
        "RFM segments",
        "Customer lifetime value",
        "Weighted pipeline by expected close month",
        "Open pipeline by stage",
        "Sales (deals closed in the window)",
        "Service: first-response SLA",
        "Campaign results (A/B",
    ):
        assert heading in text


def test_the_same_seed_gives_the_same_company_and_another_seed_another():
    assert kpis(run_demo(seed=3)) == kpis(run_demo(seed=3))
    assert kpis(run_demo(seed=3)) != kpis(run_demo(seed=4))


def test_the_simulation_uses_every_part_of_the_lead_engine():
    company = simulate(400, 7, state=MemoryRoutingState())
    assert company.facts["rejected"] > 0  # broken rows are refused by capture
    assert company.facts["merged"] > 0  # repeated form fills are merged by the match index
    assert {"triage", "anna"} <= set(company.routed)  # routed by rules, with a fallback queue
    stages = {lead.stage for lead in company.leads.values()}
    assert {"new", "disqualified", "converted"} <= stages
    assert all(order.ordered_at <= AS_OF for order in company.orders)
    assert any(deal.stage == "won" for deal in company.opportunities)
    assert any(
        deal.stage in {"prospecting", "qualification", "proposal", "negotiation"}
        for deal in company.opportunities
    )
    assert any(ticket.first_response_at is not None for ticket in company.tickets)
    assert company.facts["sla_breached"] > 0  # the SLA policy raised breaches...
    assert company.facts["escalated"] > 0  # ...and the escalation workflow moved tickets to second line
    assert any(
        change.to_stage == "escalated" for ticket in company.tickets for change in ticket.stage_history
    )
    variants = {activity.custom_fields["variant"] for activity in company.activities}
    assert variants == {"A", "B"}  # the holdout gets no e-mail


def test_the_default_demo_rewrites_its_own_store_in_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--size", "120"]) == 0
    assert main(["demo", "--size", "120"]) == 0
    assert "stored in sqlite:///crmkit-demo.db" in capsys.readouterr().out
    store = open_store(f"sqlite:///{tmp_path}/crmkit-demo.db")
    with store.transaction() as tx:
        first = tx[Lead].count()
    store.close()
    assert main(["demo", "--size", "120"]) == 0
    store = open_store(f"sqlite:///{tmp_path}/crmkit-demo.db")
    with store.transaction() as tx:
        assert tx[Lead].count() == first  # rewritten, not added to


def test_the_demo_fills_only_an_empty_store(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/crm.db"
    assert main(["demo", "--size", "100", "--store", url]) == 0
    capsys.readouterr()
    assert main(["demo", "--size", "100", "--store", url]) == 1
    assert (
        capsys.readouterr().err
        == f"crmkit demo: {url} already holds records; the demo fills an empty store\n"
    )
    store = open_store(url)
    with store.transaction() as tx:
        assert tx[Order].count() > 0


@pytest.mark.parametrize("size", ["huge", "0", "-5"])
def test_a_bad_size_is_a_usage_error(size, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--size", size])
    assert caught.value.code == 2
    assert "--size is one of tiny, small, medium, large or a number" in capsys.readouterr().err


def test_the_named_sizes_grow():
    assert list(SIZES.values()) == sorted(SIZES.values())


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_redraws_one_line_on_a_terminal_and_reports_each_step_elsewhere():
    screen = Terminal()
    bar = ProgressBar(screen)
    bar("storing", 0, 10)
    bar("storing", 5, 10)
    bar("storing", 10, 10)
    assert screen.getvalue().count("\r") == 3
    assert "[##############..............]      5/10 storing" in screen.getvalue()
    assert screen.getvalue().endswith("\n")
    log = io.StringIO()
    bar = ProgressBar(log)
    bar("storing", 5, 10)
    bar("storing", 10, 10)
    assert log.getvalue().startswith("  storing: 10 done in ")
    assert log.getvalue().count("\n") == 1


def test_main_refuses_a_missing_command():
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_version_flag(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"crmkit {__version__}"


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "crmkit", "demo", "--size", "100", "--store", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # the reader goes away after one line
    _, stderr = process.communicate(timeout=120)
    assert b"Traceback" not in stderr
