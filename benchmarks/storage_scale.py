"""Storage at scale: condition queries over a million stored contacts, in the database, streamed.

Run ``python -m benchmarks.storage_scale`` (``--contacts 1000000`` by default; ``--store`` picks the
database, a temporary SQLite file by default, or a PostgreSQL URL). It fills the store with the
contacts of :func:`benchmarks.storage.iter_contacts` (in chunks, one transaction each), then:

1. looks contacts up by their indexed email and shows the SQL plan SQLite/PostgreSQL uses;
2. runs a query on a field without an index (a full scan, as the plan shows), adds the index with
   ``Store.add_index`` and runs it again (the plan now uses the index);
3. streams every contact of one country (a quarter of the store) and measures, with
   ``tracemalloc``, the peak memory of streaming against reading the same rows into one list.

It prints a report and writes it as JSON (``--json``). The figures are reports, not pass/fail
targets; ``tests/test_benchmarks.py`` runs it at a tiny size to check that it works.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.storage import iter_contacts

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmkit.storage import Store

__all__ = ["main", "run"]

CHUNK = 20_000


def _fill(store: Store, contacts: int, wanted: set[int]) -> tuple[float, dict[int, str]]:
    """Store the contacts; return the seconds taken and the emails of the ``wanted`` contact numbers."""
    from crmkit.entities import Contact  # noqa: PLC0415 - keep the import of the module light

    started = time.perf_counter()
    emails: dict[int, str] = {}
    stream = enumerate(iter_contacts(contacts))
    while chunk := list(itertools.islice(stream, CHUNK)):
        emails.update((number, contact.email or "") for number, contact in chunk if number in wanted)
        with store.transaction() as tx:
            tx[Contact].bulk_add([contact for _, contact in chunk])
            tx.commit()
    return time.perf_counter() - started, emails


class _PlanRecorder:
    """Records the SELECT statement a query runs, to ask the database for its plan."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def plan(self, condition: Any) -> list[str]:
        """Query contacts where ``condition`` holds; return the database's plan of the SELECT it ran."""
        from crmkit.entities import Contact  # noqa: PLC0415

        statements: list[tuple[str, Any]] = []
        with self.store.transaction() as tx:
            cursor = tx.cursor  # type: ignore[attr-defined]
            connection = cursor.connection
            sqlite = hasattr(connection, "set_trace_callback")
            if sqlite:
                connection.set_trace_callback(lambda sql: statements.append((sql, None)))
            else:
                tx._cursor = _Recording(cursor, statements)  # type: ignore[attr-defined] # noqa: SLF001
            try:
                tx[Contact].query(condition, limit=1)
            finally:
                if sqlite:
                    connection.set_trace_callback(None)
                else:
                    tx._cursor = cursor  # type: ignore[attr-defined] # noqa: SLF001
            sql, params = next((q, p) for q, p in reversed(statements) if q.lstrip().startswith("SELECT"))
            if sqlite:
                rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
                return [str(row[-1]) for row in rows]
            cursor.execute(f"EXPLAIN {sql}", params)
            return [str(row[0]) for row in cursor.fetchall()]


class _Recording:
    """A DB-API cursor that notes every statement it executes (for PostgreSQL's EXPLAIN)."""

    def __init__(self, cursor: Any, log: list[tuple[str, Any]]) -> None:
        self._cursor = cursor
        self._log = log

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._log.append((str(query), params))
        return self._cursor.execute(query, params, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _timed(work: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - started) / repeat


def _peak(work: Callable[[], int]) -> tuple[int, int]:
    """Run ``work`` under tracemalloc: its answer and the peak bytes allocated meanwhile."""
    tracemalloc.start()
    try:
        answer = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return answer, peak


def run(contacts: int, url: str | None = None, *, lookups: int = 1_000) -> dict[str, Any]:
    """Fill a store with ``contacts`` contacts and measure the queries; return the report."""
    from crmkit.conditions import field  # noqa: PLC0415
    from crmkit.entities import Contact  # noqa: PLC0415
    from crmkit.storage import open_store  # noqa: PLC0415

    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='crmkit-scale-')) / 'scale.db'}"
    store = open_store(url)
    report: dict[str, Any] = {"contacts": contacts, "store": store.url}
    try:
        rng = random.Random(5)
        numbers = [rng.randrange(contacts) for _ in range(lookups)]
        seconds, by_number = _fill(store, contacts, set(numbers))
        report["fill"] = {"seconds": round(seconds, 2), "contacts_per_s": round(contacts / seconds)}
        recorder = _PlanRecorder(store)
        # 1. lookups by the indexed email
        emails = [by_number[number] for number in numbers]

        def by_email() -> None:
            with store.transaction() as tx:
                for email in emails:
                    tx[Contact].query(field("email").eq(email), limit=1)

        report["email_lookup"] = {
            "plan": recorder.plan(field("email").eq(emails[0])),
            "us_per_lookup": round(_timed(by_email, 1) / len(emails) * 1e6, 1),
        }
        # 2. a field without an index, before and after add_index
        title = field("title").eq("CTO") & field("created_at").ge(_created(contacts // 2))
        report["unindexed_query"] = {
            "plan": recorder.plan(title),
            "ms_first_page": round(_timed(lambda: _page(store, title), 3) * 1e3, 1),
        }
        store.add_index(Contact, "created_at")
        report["after_add_index"] = {
            "plan": recorder.plan(title),
            "ms_first_page": round(_timed(lambda: _page(store, title), 3) * 1e3, 1),
        }
        # 3. streaming a quarter of the store against reading it into a list
        germans = field("address.country").eq("DE")

        def stream() -> int:
            with store.transaction() as tx:
                return sum(1 for _ in tx[Contact].stream(germans, batch_size=1_000))

        def listed() -> int:
            with store.transaction() as tx:
                return len(list(tx[Contact].stream(germans, batch_size=1_000)))

        started = time.perf_counter()
        streamed, stream_peak = _peak(stream)
        stream_seconds = time.perf_counter() - started
        listed_count, list_peak = _peak(listed)
        report["stream"] = {
            "rows": streamed,
            "rows_per_s": round(streamed / stream_seconds),
            "peak_mb_streaming": round(stream_peak / 2**20, 1),
            "peak_mb_one_list": round(list_peak / 2**20, 1),
            "same_rows": streamed == listed_count,
        }
    finally:
        store.close()
    return report


def _created(number: int) -> Any:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    return datetime(2026, 1, 1, tzinfo=UTC) - timedelta(minutes=number)


def _page(store: Store, condition: Any) -> int:
    from crmkit.entities import Contact  # noqa: PLC0415

    with store.transaction() as tx:
        return len(tx[Contact].query(condition, limit=100).items)


def main(argv: list[str] | None = None) -> int:
    """Command line: fill, measure, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--store", default=None, help="a store URL (default: a temporary SQLite file)")
    parser.add_argument("--json", default=None, help="where to write the JSON report")
    args = parser.parse_args(argv)
    report = run(args.contacts, args.store)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
