"""The ``metrics-*`` cases: fitting BG/NBD on CDNOW, and retention, churn and CAC per month over orders.

* ``metrics-bgnbd``: fit BG/NBD by maximum likelihood on the 2,357 customers of the CDNOW sample
  (weeks, calibration to 1997-09-30), from their repeat-purchase summaries (built untimed). crmkit's
  pure-Python fit against ``lifetimes``' ``BetaGeoFitter`` (numpy, scipy). Every size uses the whole
  sample (a fit on a prefix would be another problem); the answer per customer is the fitted
  ``(r, alpha, a, b)`` rounded to three decimals, so both must find the published optimum.
* ``metrics-customers``: customers active at each month boundary (90-day activity window), new
  customers, retention and churn per month, and CAC per month from a year of monthly spend, over
  orders of 100,000 customers spread over three years (24 reported months). crmkit's
  ``customer_base`` (one pass), then ``retention()`` and ``acquisition_cost()``, against a single-pass
  plain Python computation (a set of active customers per boundary). The answer per order is a digest
  of the whole monthly report, which must be identical.

Inputs come from a fixed seed; a smaller size is a prefix of the same stream of orders.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "cdnow_summaries", "make_orders", "monthly_spend"]

CDNOW = Path(__file__).resolve().parents[1] / "tests" / "data" / "CDNOW_sample.txt"
CDNOW_CUSTOMERS = 2_357
SEED = 20_261_122
CUSTOMERS = 100_000
CAMPAIGNS = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")
HISTORY_START = date(2023, 1, 1)
HISTORY_DAYS = 3 * 365
FIRST_MONTH = date(2024, 1, 1)
LAST_DAY = date(2025, 12, 31)
ACTIVITY_DAYS = 90


# -- BG/NBD ---------------------------------------------------------------------------------------


def cdnow_summaries(n: int = CDNOW_CUSTOMERS) -> list[Any]:
    """The CDNOW customers' repeat-purchase summaries in weeks (days / 7), up to 1997-09-30."""
    from crmkit.segmentation import OrderRow, btyd_summary  # noqa: PLC0415 - keep the harness import light

    rows = []
    for line in CDNOW.read_text(encoding="utf-8").splitlines():
        _, customer, day, _, amount = line.split()
        at = datetime(int(day[:4]), int(day[4:6]), int(day[6:]), tzinfo=UTC)
        rows.append(OrderRow(customer, at, Decimal(amount)))
    summaries = btyd_summary(rows, datetime(1997, 9, 30, tzinfo=UTC), unit="day", multiplier=7)
    return summaries[:n]


def _rounded(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in values)


def _crmkit_bgnbd(summaries: Sequence[Any]) -> Work:
    from crmkit.metrics import fit_bg_nbd  # noqa: PLC0415

    def work() -> list[tuple[float, ...]]:
        model = fit_bg_nbd(summaries)
        return [_rounded((model.r, model.alpha, model.a, model.b))] * len(summaries)

    return work


def _lifetimes_bgnbd(summaries: Sequence[Any]) -> Work:
    import pandas as pd  # noqa: PLC0415 - an optional peer

    with warnings.catch_warnings():  # lifetimes 0.11 sets a pandas option that pandas 3 deprecates
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter  # noqa: PLC0415

    frequency = pd.Series([s.frequency for s in summaries], dtype="float64")
    recency = pd.Series([s.recency for s in summaries], dtype="float64")
    age = pd.Series([s.T for s in summaries], dtype="float64")

    def work() -> list[tuple[float, ...]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = BetaGeoFitter().fit(frequency, recency, age)
        params = fitter.params_
        return [_rounded([float(params[k]) for k in ("r", "alpha", "a", "b")])] * len(summaries)

    return work


def summarize_bgnbd(answers: Sequence[tuple[float, ...]]) -> str:
    """The fitted parameters (the published ones are 0.243, 4.414, 0.793, 2.426)."""
    r, alpha, a, b = answers[0]
    return f"fitted r={r}, alpha={alpha}, a={a}, b={b} on {len(answers):,} customers"


# -- retention, churn and CAC -----------------------------------------------------------------------


def make_orders(n: int, seed: int = SEED) -> list[Any]:
    """``n`` orders of 100,000 customers over 2023-2025 (first ``n`` of one seeded stream)."""
    from crmkit.segmentation import OrderRow  # noqa: PLC0415

    rng = random.Random(seed)
    start = datetime.combine(HISTORY_START, datetime.min.time(), UTC)
    amounts = [Decimal(cents) / 100 for cents in range(500, 20_000, 37)]
    orders = []
    for _ in range(n):
        customer = f"cust{rng.randrange(CUSTOMERS):06d}"
        at = start + timedelta(days=rng.randrange(HISTORY_DAYS), seconds=rng.randrange(86_400))
        campaign = rng.choice(CAMPAIGNS) if rng.random() < 0.8 else None
        orders.append(OrderRow(customer, at, rng.choice(amounts), None, campaign))
    return orders


def monthly_spend() -> list[tuple[date, Decimal]]:
    """Acquisition spend: one amount on the 1st of each month of 2024-2025 (fixed seed)."""
    rng = random.Random(SEED + 1)
    spend = []
    for month in range(24):
        day = date(2024 + month // 12, month % 12 + 1, 1)
        spend.append((day, Decimal(rng.randrange(10_000, 50_000))))
    return spend


def _digest(report: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(report).encode()).hexdigest()[:16]


def _crmkit_customers(orders: Sequence[Any]) -> Work:
    from crmkit.metrics import PeriodRange, SpendRow, customer_base  # noqa: PLC0415
    from crmkit.money import Money  # noqa: PLC0415

    periods = PeriodRange("month", FIRST_MONTH, LAST_DAY)
    spend = [SpendRow(day, Money(amount, "USD")) for day, amount in monthly_spend()]

    def work() -> list[str]:
        base = customer_base(orders, periods=periods, activity_days=ACTIVITY_DAYS)
        retention = base.retention()
        cac = base.acquisition_cost(spend, currency="USD")
        report = [
            (r.period, r.customers_at_start, r.new_customers, r.customers_at_end, r.lost_customers, *rates)
            for r, c in zip(retention, cac, strict=True)
            for rates in [(r.retention_rate, r.churn_rate, c.spend, c.cac)]
        ]
        return [_digest(report)] * len(orders)

    return work


def _plain_customers(orders: Sequence[Any]) -> Work:
    months = [date(2024 + m // 12, m % 12 + 1, 1) for m in range(25)]
    boundaries = [day.toordinal() for day in months]
    labels = [f"{day.year:04d}-{day.month:02d}" for day in months[:-1]]
    spend_by_month = {(day.year, day.month): amount for day, amount in monthly_spend()}
    last = boundaries[-1]
    count = len(labels)

    def work() -> list[str]:
        first: dict[str, int] = {}
        active: list[set[str]] = [set() for _ in boundaries]
        for customer, at, *_ in orders:
            day = at.toordinal()  # every row is in UTC, the report's zone
            if day >= last:
                continue
            known = first.get(customer)
            if known is None or day < known:
                first[customer] = day
            j = bisect_right(boundaries, day)
            while j <= count and boundaries[j] <= day + ACTIVITY_DAYS:
                active[j].add(customer)
                j += 1
        new = [0] * count
        for day in first.values():
            i = bisect_right(boundaries, day) - 1
            if 0 <= i < count:
                new[i] += 1
        report = []
        for i, label in enumerate(labels):
            start, end = active[i], active[i + 1]
            s, e, lost = len(start), len(end), len(start - end)
            spend = spend_by_month[months[i].year, months[i].month]
            report.append(
                (
                    label,
                    s,
                    new[i],
                    e,
                    lost,
                    (e - new[i]) / s if s else None,
                    lost / s if s else None,
                    spend,
                    spend / new[i] if new[i] else None,
                )
            )
        return [_digest(report)] * len(orders)

    return work


def summarize_customers(answers: Sequence[str]) -> str:
    """How many orders were read for the 24-month report."""
    return f"24 monthly rows of retention, churn and CAC from {len(answers):,} orders"


CASES = [
    Case(
        name="metrics-bgnbd",
        description="fit BG/NBD by maximum likelihood on the CDNOW sample (2,357 customers, weeks)",
        unit="customer",
        sizes={"tiny": CDNOW_CUSTOMERS, "small": CDNOW_CUSTOMERS, "full": CDNOW_CUSTOMERS},
        make_items=cdnow_summaries,
        contenders=(
            Contender("crmkit", _crmkit_bgnbd, distribution="crmkit"),
            Contender("lifetimes", _lifetimes_bgnbd, distribution="lifetimes"),
        ),
        summarize=summarize_bgnbd,
    ),
    Case(
        name="metrics-customers",
        description="retention, churn and CAC per month (24 months, 90-day activity window) over orders",
        unit="order",
        sizes={"tiny": 20_000, "small": 200_000, "full": 1_000_000},
        make_items=make_orders,
        contenders=(
            Contender("crmkit", _crmkit_customers, distribution="crmkit"),
            Contender("single-pass", _plain_customers),
        ),
        summarize=summarize_customers,
    ),
]
