"""Record visibility holds through the APIs built on the store: timelines and metrics."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crmkit.access import Principal, Role
from crmkit.clock import FixedClock, use_clock
from crmkit.entities import Activity, Contact, Opportunity
from crmkit.metrics import sales_summary
from crmkit.money import Money
from crmkit.sales import customer_timeline
from crmkit.storage import open_store

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ANN = Principal(user_id="ann", role=Role.MEMBER, teams=["de"])
ADMIN = Principal(user_id="root", role=Role.ADMIN)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/crm.db"
    with use_clock(FixedClock(NOW)), open_store(url) as opened:
        with opened.transaction() as tx:
            tx[Contact].add(Contact(id="c-1", email="ada@example.com"))
            for n, owner in enumerate(["ann", "bob", "ann", "bob"]):
                tx[Activity].add(
                    Activity(
                        id=f"a-{n}",
                        activity_type="call",
                        contact_id="c-1",
                        owner_id=owner,
                        subject=f"call {n} by {owner}",
                        occurred_at=NOW - timedelta(days=n + 1),
                    )
                )
            for n, owner in enumerate(["ann", "bob", "bob"]):
                tx[Opportunity].add(
                    Opportunity(
                        id=f"o-{n}",
                        name=f"deal {n}",
                        owner_id=owner,
                        amount=Money(Decimal(1000 * (n + 1)), "EUR"),
                        created_at=NOW - timedelta(days=30),
                    )
                )
            tx.commit()
        yield opened


def test_a_members_timeline_leaves_out_other_members_private_activities(store):
    with store.with_access(ANN).transaction() as tx:
        mine = customer_timeline(tx, contact_id="c-1", kinds=["call"])
    with store.with_access(ADMIN).transaction() as tx:
        everything = customer_timeline(tx, contact_id="c-1", kinds=["call"])
    assert [entry.record.id for entry in mine.entries] == ["a-0", "a-2"]
    assert [entry.record.id for entry in everything.entries] == ["a-0", "a-1", "a-2", "a-3"]


def test_metrics_computed_through_an_access_context_count_only_what_it_sees(store):
    def open_deals(principal):
        with store.with_access(principal).transaction() as tx:
            deals = list(tx[Opportunity].stream())
        summary = sales_summary(deals, start=NOW - timedelta(days=90), end=NOW, as_of=NOW, currency="EUR")
        return summary.open_opportunities

    assert open_deals(ANN) == 1  # her own deal; bob's two are private to him
    assert open_deals(ADMIN) == 3  # company-wide numbers through an admin context
