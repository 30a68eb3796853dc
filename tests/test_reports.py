import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.cli._scripts import parse_as_of
from crmkit.cli._transfer import UserError
from crmkit.entities import (
    Activity,
    Campaign,
    EntityRef,
    Lead,
    LineItem,
    Opportunity,
    Order,
    StageChange,
    Ticket,
)
from crmkit.money import Money
from crmkit.reports import (
    METRICS,
    MetricTable,
    ReportData,
    format_table,
    kpi_report,
    metric_table,
    read_data,
    render_text,
    window,
)
from crmkit.storage import open_store

AS_OF = datetime(2026, 3, 31, 18, tzinfo=UTC)


def order(customer, day, amount, campaign=None):
    return Order(
        number=f"{customer}-{day}",
        contact_id=customer,
        ordered_at=day,
        currency="EUR",
        status="paid",
        campaign_id=campaign,
        lines=(LineItem(quantity=Decimal(1), unit_price=Money(amount, "EUR")),),
    )


def at(month, day=10):
    return datetime(2026, month, day, 12, tzinfo=UTC)


def data():
    ads = Campaign(
        id="ads-q1",
        name="Search ads Q1",
        channel="web_form",
        actual_cost=Money(300, "EUR"),
        starts_at=at(1, 1),
    )
    fair = Campaign(
        id="fair", name="Trade fair", channel="event", actual_cost=Money(1000, "EUR"), starts_at=at(2, 1)
    )
    offer = Campaign(id="offer", name="Spring offer", channel="email", starts_at=at(3, 1))
    orders = [
        order("ada", at(1), 100, "ads-q1"),
        order("ada", at(2), 50),
        order("ada", at(3), 50),
        order("bob", at(1, 20), 200, "ads-q1"),
        order("cy", at(2, 15), 400, "fair"),
        order("dee", at(3, 5), 80),
    ]
    history = (
        StageChange(from_stage="new", to_stage="contacted", at=at(1, 2)),
        StageChange(from_stage="contacted", to_stage="qualified", at=at(1, 5)),
    )
    leads = [
        Lead(email="a@x.com", created_at=at(1, 1), stage="qualified", stage_history=history),
        Lead(email="b@x.com", created_at=at(1, 1), stage="contacted", stage_history=history[:1]),
        Lead(email="c@x.com", created_at=at(1, 1)),
        Lead(email="d@x.com", created_at=at(1, 1)),
    ]
    deals = [
        Opportunity(
            name="Open big",
            amount=Money(1000, "EUR"),
            stage="proposal",
            created_at=at(1),
            stage_history=(StageChange(from_stage="prospecting", to_stage="proposal", at=at(2)),),
            expected_close=date(2026, 4, 20),
        ),
        Opportunity(
            name="Open small", amount=Money(100, "EUR"), created_at=at(1), expected_close=date(2026, 5, 2)
        ),
        Opportunity(
            name="Sure",
            amount=Money(500, "EUR"),
            stage="negotiation",
            probability=Decimal("0.9"),
            created_at=at(1),
            expected_close=date(2026, 4, 1),
            stage_history=(StageChange(from_stage="prospecting", to_stage="negotiation", at=at(2)),),
        ),
    ]
    opened = datetime(2026, 3, 2, 9, tzinfo=UTC)
    tickets = [
        Ticket(
            subject="Fast", priority="high", created_at=opened, first_response_at=opened + timedelta(hours=1)
        ),
        Ticket(
            subject="Slow", priority="high", created_at=opened, first_response_at=opened + timedelta(hours=9)
        ),
        Ticket(subject="Unanswered", priority="urgent", created_at=opened),
    ]

    def response(customer, variant, kind):
        return Activity(
            activity_type="email",
            regarding=EntityRef.to(offer),
            contact_id=customer,
            occurred_at=at(3, 2),
            custom_fields={"variant": variant, "response": kind},
        )

    activities = [
        response("ada", "A", "sent"),
        response("bob", "A", "sent"),
        response("cy", "B", "sent"),
        response("dee", "B", "sent"),
        response("dee", "B", "converted"),
        response("cy", "B", "opened"),
        Activity(activity_type="call", contact_id="ada", occurred_at=at(3)),  # not a campaign response
    ]
    return ReportData(
        orders=orders,
        leads=leads,
        opportunities=deals,
        tickets=tickets,
        campaigns=[ads, fair, offer],
        activities=activities,
    )


@pytest.fixture(scope="module")
def report():
    return kpi_report(data(), as_of=AS_OF, months=3)


def table(report, name):
    return {row[0]: row[1:] for row in metric_table(report, name).rows}


def test_the_window_is_the_months_up_to_as_of():
    assert window(AS_OF, 3).labels == ("2026-01", "2026-02", "2026-03")


def test_cac_by_channel_divides_each_channels_spend_by_its_new_customers(report):
    cac = table(report, "cac")
    # ada and bob came through the search ads (300 EUR), cy through the fair (1000 EUR), dee by herself.
    assert cac["web_form"] == (Decimal("300.00"), 2, Decimal("150.00"))
    assert cac["event"] == (Decimal("1000.00"), 1, Decimal("1000.00"))
    assert cac["(none)"] == (Decimal("0.00"), 1, Decimal("0.00"))


def test_the_funnel_follows_the_leads_through_their_stages(report):
    funnel = table(report, "funnel")
    assert funnel["new"][0] == 4
    assert funnel["contacted"][:2] == (2, 0.5)
    assert funnel["qualified"][:2] == (1, 0.5)
    assert funnel["converted"][0] == 0


def test_the_pipeline_by_stage_weighs_each_deal_by_its_own_or_its_stages_probability(report):
    stages = table(report, "stages")
    assert stages["prospecting"] == (1, Decimal("100.00"), Decimal("10.00"))
    assert stages["proposal"] == (1, Decimal("1000.00"), Decimal("500.00"))
    assert stages["negotiation"] == (1, Decimal("500.00"), Decimal("450.00"))  # its own 0.9
    pipeline = table(report, "pipeline")
    assert pipeline["2026-04"] == (2, Decimal("1500.00"), Decimal("950.00"))


def test_sla_attainment_counts_answered_and_overdue_tickets(report):
    sla = metric_table(report, "sla").rows[0]
    # High priority (4 h): one answered in 1 h, one in 9 h; the urgent one is overdue without an answer.
    assert sla[:3] == (3, 1, 0.3333)


def test_campaign_results_read_the_responses_recorded_as_activities(report):
    rows = metric_table(report, "campaigns").rows
    assert [row[:6] for row in rows] == [
        ("Spring offer", "A", 2, 0, 0, 0),
        ("Spring offer", "B", 2, 1, 0, 1),
    ]
    assert rows[0][7] is None  # the control is not tested against itself
    assert 0 < rows[1][7] < 1


def test_rfm_segments_name_every_customer(report):
    assert sum(report.rfm_segments.values()) == 4
    assert sum(count for _, count in metric_table(report, "rfm").rows) == 4


def test_revenue_and_clv_come_from_the_orders(report):
    revenue = table(report, "revenue")
    assert revenue["2026-01"][:2] == (Decimal("300.00"), 2)
    assert report.clv.average_order_value == Decimal(880) / 6


def test_every_metric_table_converts_to_json():
    report = kpi_report(data(), as_of=AS_OF, months=3)
    for name in METRICS:
        records = metric_table(report, name).records()
        json.dumps(records)
        assert all(set(record) == set(metric_table(report, name).columns) for record in records)


def test_the_text_summary_shows_every_metric_with_its_formula(report):
    text = render_text(report)
    assert text.startswith("KPI summary as of 2026-03-31, 2026-01 to 2026-03, amounts in EUR")
    for name in METRICS:
        assert metric_table(report, name).formula in text


def test_a_table_without_rows_says_so():
    text = format_table(MetricTable("x", "Nothing", "n/a", ("a", "b"), ()))
    assert "(no data)" in text


def test_an_empty_crm_still_reports():
    empty = kpi_report(ReportData(), as_of=AS_OF)
    assert empty.currency == "USD"
    assert "(no data)" in render_text(empty)
    assert empty.sla.attainment is None


def test_read_data_streams_every_kind_from_a_store():
    store = open_store("memory://")
    records = data()
    with store.transaction() as tx:
        for kind in (
            records.orders,
            records.leads,
            records.opportunities,
            records.tickets,
            records.campaigns,
            records.activities,
        ):
            tx[type(kind[0])].bulk_add(kind, strict=True)
        tx.commit()
    with store.transaction() as tx:
        stored = read_data(tx)
    assert len(stored.orders) == 6
    assert len(stored.activities) == 7
    assert (
        kpi_report(stored, as_of=AS_OF, months=3).cac_by_channel
        == kpi_report(data(), as_of=AS_OF, months=3).cac_by_channel
    )


@settings(max_examples=50)
@given(st.datetimes(timezones=st.just(UTC)))
def test_as_of_reads_back_any_iso_time_with_an_offset(moment):
    assert parse_as_of(moment.isoformat()) == moment


@settings(max_examples=50)
@given(st.dates())
def test_as_of_reads_a_date_as_the_end_of_that_day(day):
    moment = parse_as_of(day.isoformat())
    assert moment.date() == day
    assert (moment.hour, moment.minute, moment.second) == (23, 59, 59)
    assert moment.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-02-30", "yesterday", "2026-03-01T10:00:00"])
def test_as_of_refuses_a_bad_or_naive_time(text):
    with pytest.raises(UserError, match="--as-of"):
        parse_as_of(text)


def test_predictive_clv_is_left_out_with_too_few_customers(report):
    assert report.clv.predictive_clv is None  # four customers say too little for BG/NBD
    assert report.clv.models_converged is False
