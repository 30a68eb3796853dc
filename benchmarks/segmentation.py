"""The segmentation cases: RFM, the BTYD summary and the cohort retention matrix over the same orders.

The orders: ``n`` customers (100,000 at full size), each acquired on a random day of 2024-2025 and placing
on average ten orders (a geometric count) between then and the end of 2025, about 1,000,000 orders at full
size, as :class:`~crmkit.segmentation.OrderRow` tuples (customer id, aware UTC time, ``Decimal`` amount
in cents) sorted by time, as they would come out of an orders table. They come from a fixed seed; a
smaller size is the first customers of the same stream.

* ``segmentation-rfm``: recency, frequency, monetary, tenure and the three ``NTILE(5)`` scores per customer
  as of 2026-01-01. Contenders: crmkit's ``rfm_scores``; a plain single-pass Python dict implementation (the
  floor the issue sets: within 1.3x); pandas ``groupby`` on a frame built untimed from the same rows
  (amounts as integer cents, times as ``datetime64``). The answer per customer (sorted ids) is ``(id,
  recency, frequency, monetary in cents, tenure, r, f, m)``; every contender builds these Python tuples in
  its timed work. The summary line also times ``lifetimes``' summary function against crmkit's RFM on the
  same orders (the issue asks crmkit's RFM to be at least as fast).
* ``segmentation-btyd``: the repeat-purchase summary (frequency, recency, T in days, mean repeat spend).
  Contenders: crmkit's ``btyd_summary``; ``lifetimes.utils.summary_data_from_transaction_data`` on a frame
  built untimed; a plain Python dict implementation. Mean spend is compared to 1e-9 relative (lifetimes sums
  floats, crmkit ``Decimal``).
* ``segmentation-cohorts``: the monthly cohort retention matrix. Contenders: crmkit's ``cohort_retention``,
  a plain Python dict implementation, pandas. The work yields one answer, the matrix (labels, sizes, active
  counts), so this case has one item per run: read its time, not its throughput.

The summary line reports crmkit's extra memory at the peak of each call (``tracemalloc``) and the
process's peak resident memory, input included.
"""

from __future__ import annotations

import gc
import math
import random
import resource
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Work
    from crmkit.segmentation import OrderRow

__all__ = ["AS_OF", "CASES", "SEED", "Customers", "OrderTable", "make_customers"]

SEED = 20_261_122
START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((AS_OF - START).total_seconds())
MEAN_ORDERS = 10
TILES = 5
_MEMORY: dict[str, str] = {}
_STATE: dict[str, Any] = {}


class Customers(list[str]):
    """The customer ids (the items, sorted) and, as ``orders``, every order of these customers."""

    orders: list[OrderRow]


def make_customers(n: int, seed: int = SEED) -> Customers:
    """``n`` customers and their orders (about ``10 n``), sorted by time."""
    from crmkit.segmentation import OrderRow  # noqa: PLC0415 - keep the harness import light

    rng = random.Random(seed)
    rows: list[OrderRow] = []
    ids = []
    p = 1 / MEAN_ORDERS
    log_q = math.log(1 - p)
    for number in range(n):
        customer = f"c{number:07d}"
        ids.append(customer)
        first = rng.randrange(SPAN_SECONDS)
        count = 1 + int(math.log(1 - rng.random()) / log_q)  # geometric, mean about MEAN_ORDERS
        for index in range(count):
            second = first if index == 0 else rng.randrange(first, SPAN_SECONDS)
            cents = rng.choice((999, 1999, 4999, rng.randrange(100, 50_000)))
            rows.append(OrderRow(customer, START + timedelta(seconds=second), Decimal(cents).scaleb(-2)))
    rows.sort(key=lambda row: row[1])
    customers = Customers(ids)
    customers.orders = rows
    return customers


class OrderTable(list["Customers"]):
    """One item: all the customers and orders (for the cohort case, whose answer is one matrix)."""


def _make_table(n: int) -> OrderTable:
    return OrderTable([make_customers(n)])


def _orders(items: Sequence[Any]) -> list[OrderRow]:
    if isinstance(items, OrderTable):
        return items[0].orders
    return items.orders  # type: ignore[no-any-return, attr-defined]


def _measure(name: str, call: Any) -> None:
    """Measure crmkit's extra memory at the peak of one call, untimed."""
    tracemalloc.start()
    try:
        call()
        _MEMORY[name] = f"{tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MB"
    finally:
        tracemalloc.stop()


def _cents(amount: Decimal) -> int:
    return int(amount.scaleb(2))


# -- rfm -----------------------------------------------------------------------------------------------


def _crmkit_rfm(items: Sequence[str]) -> Work:
    from crmkit.segmentation import rfm_scores  # noqa: PLC0415

    rows = _orders(items)
    _STATE["rfm"] = items
    _measure("rfm", lambda: rfm_scores(rows, AS_OF))

    def work() -> list[Any]:
        return [
            (s.customer_id, s.recency, s.frequency, _cents(s.monetary), s.tenure, s.r, s.f, s.m)
            for s in rfm_scores(rows, AS_OF)
        ]

    return work


def _ntile(order: list[int]) -> list[int]:
    scores = [0] * len(order)
    base, extra = divmod(len(order), TILES)
    start = 0
    for tile in range(TILES):
        stop = start + base + (tile < extra)
        for index in order[start:stop]:
            scores[index] = tile + 1
        start = stop
    return scores


def _plain_rfm(items: Sequence[str]) -> Work:
    rows = _orders(items)

    def work() -> list[Any]:
        stats: dict[str, list[Any]] = {}
        for customer, at, amount, *_ in rows:
            if at > AS_OF:
                continue
            acc = stats.get(customer)
            if acc is None:
                stats[customer] = [at, at, 1, amount]
            else:
                acc[0] = min(acc[0], at)
                acc[1] = max(acc[1], at)
                acc[2] += 1
                acc[3] += amount
        ids = sorted(stats)
        recency = [(AS_OF - stats[c][1]).days for c in ids]
        frequency = [stats[c][2] for c in ids]
        monetary = [stats[c][3] for c in ids]
        n = len(ids)
        r = _ntile(sorted(range(n), key=lambda i: (-recency[i], ids[i])))
        f = _ntile(sorted(range(n), key=lambda i: (frequency[i], ids[i])))
        m = _ntile(sorted(range(n), key=lambda i: (monetary[i], ids[i])))
        return [
            (
                ids[i],
                recency[i],
                frequency[i],
                _cents(monetary[i]),
                (AS_OF - stats[ids[i]][0]).days,
                r[i],
                f[i],
                m[i],
            )
            for i in range(n)
        ]

    return work


def _frame(rows: Sequence[OrderRow]) -> Any:
    import pandas as pd  # noqa: PLC0415 - optional peer

    return pd.DataFrame(
        {
            "customer": [row[0] for row in rows],
            "at": pd.to_datetime([row[1] for row in rows], utc=True),
            "cents": [_cents(row[2]) for row in rows],
        }
    )


def _pandas_ntile(frame: Any, column: str, *, descending: bool) -> Any:
    import numpy as np  # noqa: PLC0415 - optional peer

    ordered = frame.sort_values([column, "customer"], ascending=[not descending, True], kind="stable").index
    n = len(ordered)
    base, extra = divmod(n, TILES)
    position = np.arange(n)
    big = extra * (base + 1)
    tile = np.where(position < big, position // (base + 1), extra + (position - big) // max(base, 1)) + 1
    scores = np.empty(n, dtype=np.int64)
    scores[ordered.to_numpy()] = tile
    return scores


def _pandas_rfm(items: Sequence[str]) -> Work:
    import pandas as pd  # noqa: PLC0415 - optional peer

    frame = _frame(_orders(items))
    as_of = pd.Timestamp(AS_OF)

    def work() -> list[Any]:
        kept = frame[frame["at"] <= as_of]
        g = kept.groupby("customer", sort=True).agg(
            first=("at", "min"), last=("at", "max"), frequency=("at", "size"), cents=("cents", "sum")
        )
        g = g.reset_index()
        g["recency"] = (as_of - g["last"]).dt.days
        g["tenure"] = (as_of - g["first"]).dt.days
        r = _pandas_ntile(g, "recency", descending=True)
        f = _pandas_ntile(g, "frequency", descending=False)
        m = _pandas_ntile(g, "cents", descending=False)
        return list(
            zip(
                g["customer"].tolist(),
                g["recency"].tolist(),
                g["frequency"].tolist(),
                g["cents"].tolist(),
                g["tenure"].tolist(),
                r.tolist(),
                f.tolist(),
                m.tolist(),
                strict=True,
            )
        )

    return work


# -- btyd ----------------------------------------------------------------------------------------------


class Close(float):
    """A float equal to another within 1e-9 relative (lifetimes sums floats, crmkit decimals)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(self, other, rel_tol=1e-9, abs_tol=1e-9)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = float.__hash__


def _crmkit_btyd(items: Sequence[str]) -> Work:
    from crmkit.segmentation import btyd_summary  # noqa: PLC0415

    rows = _orders(items)
    _measure("btyd", lambda: btyd_summary(rows, AS_OF))

    def work() -> list[Any]:
        return [
            (s.customer_id, s.frequency, s.recency, s.T, Close(s.monetary)) for s in btyd_summary(rows, AS_OF)
        ]

    return work


def _plain_btyd(items: Sequence[str]) -> Work:
    rows = _orders(items)
    end = AS_OF.toordinal()

    def work() -> list[Any]:
        periods: dict[str, dict[int, Decimal]] = {}
        for customer, at, amount, *_ in rows:
            day = at.toordinal()
            if day > end:
                continue
            sums = periods.setdefault(customer, {})
            sums[day] = sums.get(day, 0) + amount
        out = []
        for customer in sorted(periods):
            sums = periods[customer]
            first, last = min(sums), max(sums)
            frequency = len(sums) - 1
            repeat = (sum(sums.values()) - sums[first]) / frequency if frequency else 0
            out.append((customer, frequency, float(last - first), float(end - first), Close(repeat)))
        return out

    return work


def _lifetimes_btyd(items: Sequence[str]) -> Work:
    import warnings  # noqa: PLC0415

    from lifetimes.utils import summary_data_from_transaction_data  # noqa: PLC0415 - optional peer

    frame = _frame(_orders(items))
    frame["at"] = frame["at"].dt.tz_localize(None)
    frame["amount"] = frame["cents"] / 100
    frame = frame[["customer", "at", "amount"]]
    end = AS_OF.replace(tzinfo=None)

    def work() -> list[Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = summary_data_from_transaction_data(
                frame, "customer", "at", "amount", observation_period_end=end, freq="D"
            ).sort_index()
        return [
            (customer, int(frequency), recency, t, Close(value))
            for customer, frequency, recency, t, value in zip(
                summary.index.tolist(),
                summary["frequency"].tolist(),
                summary["recency"].tolist(),
                summary["T"].tolist(),
                summary["monetary_value"].tolist(),
                strict=True,
            )
        ]

    return work


# -- cohorts -------------------------------------------------------------------------------------------


def _crmkit_cohorts(items: Sequence[Any]) -> Work:
    from crmkit.segmentation import cohort_retention  # noqa: PLC0415

    rows = _orders(items)
    _measure("cohorts", lambda: cohort_retention(rows))

    def work() -> list[Any]:
        matrix = cohort_retention(rows)
        return [(matrix.cohorts, matrix.sizes, matrix.active)]

    return work


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _plain_cohorts(items: Sequence[Any]) -> Work:
    rows = _orders(items)

    def work() -> list[Any]:
        seen: dict[str, set[int]] = {}
        for customer, at, *_ in rows:
            month = at.year * 12 + at.month - 1
            months = seen.get(customer)
            if months is None:
                seen[customer] = {month}
            else:
                months.add(month)
        last = max(max(months) for months in seen.values())
        counts: dict[int, list[int]] = {}
        for months in seen.values():
            first = min(months)
            row = counts.setdefault(first, [0] * (last - first + 1))
            for month in months:
                row[month - first] += 1
        firsts = sorted(counts)
        return [
            (
                tuple(_label(first) for first in firsts),
                tuple(counts[first][0] for first in firsts),
                tuple(tuple(counts[first]) for first in firsts),
            )
        ]

    return work


def _pandas_cohorts(items: Sequence[Any]) -> Work:
    frame = _frame(_orders(items))[["customer", "at"]]

    def work() -> list[Any]:
        at = frame["at"].dt
        month = at.year * 12 + at.month - 1
        df = frame.assign(month=month).drop_duplicates(["customer", "month"])
        df = df.assign(cohort=df.groupby("customer")["month"].transform("min"))
        df = df.assign(k=df["month"] - df["cohort"])
        table = df.groupby(["cohort", "k"]).size().unstack(fill_value=0)  # noqa: PD010 - a count table
        last = int(df["month"].max())
        cohorts = [int(c) for c in table.index]
        table = table.reindex(columns=range(last - cohorts[0] + 1), fill_value=0)
        values = table.to_numpy().tolist()
        active = tuple(tuple(row[: last - c + 1]) for c, row in zip(cohorts, values, strict=True))
        return [(tuple(_label(c) for c in cohorts), tuple(row[0] for row in active), active)]

    return work


# -- cases ---------------------------------------------------------------------------------------------


def _summary(answers: Sequence[Any]) -> str:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = ", ".join(f"{name} {value}" for name, value in sorted(_MEMORY.items()))
    return f"{len(answers):,} answers; crmkit extra memory at peak: {memory}; process peak RSS {peak:,.0f} MB"


def _rfm_summary(answers: Sequence[Any]) -> str:
    """The memory line, and crmkit's RFM against ``lifetimes``' summary on the same orders, timed here.

    The issue asks for crmkit's RFM to be at least as fast as lifetimes' summary function; their
    answers differ, so they cannot be contenders of one case. Both run three times, taking turns, with
    the garbage collector off as the harness runs its contenders.
    """
    line = _summary(answers)
    items = _STATE.pop("rfm", None)
    try:
        lifetimes = _lifetimes_btyd(items) if items is not None else None
    except ImportError:
        lifetimes = None
    if lifetimes is None:
        return line
    ours = _crmkit_rfm(items)
    best = {"crmkit rfm_scores": math.inf, "lifetimes summary": math.inf}
    for _ in range(3):
        for name, work in (("crmkit rfm_scores", ours), ("lifetimes summary", lifetimes)):
            gc.collect()
            gc.disable()  # as the harness times its contenders
            try:
                start = time.perf_counter()
                work()
                best[name] = min(best[name], time.perf_counter() - start)
            finally:
                gc.enable()
    times = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in best.items())
    ratio = best["lifetimes summary"] / best["crmkit rfm_scores"]
    return f"{line}; best of 3 on the same orders: {times} (crmkit {ratio:.2f}x as fast)"


SIZES = {"tiny": 1_000, "small": 10_000, "full": 100_000}

CASES = (
    Case(
        name="segmentation-rfm",
        description="RFM summary and NTILE(5) scores per customer as of a date, ~10 orders per customer",
        unit="customer",
        sizes=SIZES,
        make_items=make_customers,
        contenders=(
            Contender("crmkit", _crmkit_rfm),
            Contender("plain-python", _plain_rfm),
            Contender("pandas", _pandas_rfm, distribution="pandas"),
        ),
        summarize=_rfm_summary,
    ),
    Case(
        name="segmentation-btyd",
        description="the BTYD summary (frequency, recency, T, repeat spend) per customer, in days",
        unit="customer",
        sizes=SIZES,
        make_items=make_customers,
        contenders=(
            Contender("crmkit", _crmkit_btyd),
            Contender("plain-python", _plain_btyd),
            Contender("lifetimes", _lifetimes_btyd, distribution="lifetimes"),
        ),
        summarize=_summary,
    ),
    Case(
        name="segmentation-cohorts",
        description="monthly cohort retention matrix of all the orders (one matrix per run: compare times)",
        unit="matrix",
        sizes=SIZES,
        make_items=_make_table,
        contenders=(
            Contender("crmkit", _crmkit_cohorts),
            Contender("plain-python", _plain_cohorts),
            Contender("pandas", _pandas_cohorts, distribution="pandas"),
        ),
        summarize=_summary,
    ),
)
