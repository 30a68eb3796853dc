"""``crmkit demo``: a seeded company, run through crmkit's real APIs, stored, and summed up in KPIs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from crmkit._version import __version__
from crmkit.cli._company import AS_OF, CURRENCY, Company, business_calendar, simulate
from crmkit.entities import (
    Account,
    Activity,
    Campaign,
    Consent,
    Contact,
    Lead,
    Opportunity,
    Order,
    Team,
    Ticket,
    User,
)
from crmkit.privacy import erase_person
from crmkit.reports import kpi_report, read_data, render_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from crmkit.storage import Store

__all__ = ["DEMO_STORE", "demo"]

#: Where the demo keeps its company when ``--store`` names no other store; rewritten on every run.
DEMO_STORE = "crmkit-demo.db"
_BAR = 28


class ProgressBar:
    """A one-line progress bar on a terminal; one line per finished step elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._step: str | None = None
        self._started = time.perf_counter()

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self._step:
            self._step, self._started = step, time.perf_counter()
        if self._tty:
            filled = _BAR * done // max(total, 1)
            self._stream.write(f"\r  [{'#' * filled}{'.' * (_BAR - filled)}] {done:>6,}/{total:,} {step}")
            if done >= total:
                self._stream.write("\n")
            self._stream.flush()
        elif done >= total:
            self._stream.write(f"  {step}: {total:,} done in {time.perf_counter() - self._started:.1f} s\n")


def _store_company(store: Store, size: int, seed: int, progress: Callable[[str, int, int], None]) -> Company:
    with store.transaction(actor="demo") as tx:
        company = simulate(size, seed, state=tx.state, progress=progress)
        kinds: list[tuple[type[Any], list[Any]]] = [
            (Team, company.teams),
            (User, company.users),
            (Campaign, company.campaigns),
            (Lead, list(company.leads.values())),
            (Consent, company.consents),
            (Account, list(company.accounts.values())),
            (Contact, company.contacts),
            (Opportunity, company.opportunities),
            (Order, company.orders),
            (Ticket, company.tickets),
            (Activity, company.activities),
        ]
        total = sum(len(records) for _, records in kinds)
        done = 0
        for cls, records in kinds:
            progress("storing the records", done, total)
            tx[cls].bulk_add(records, strict=True)
            done += len(records)
        tx.record(*(event for event in company.events if event is not None))
        progress("storing the records", total, total)
        tx.commit()
    if company.contacts:
        # A customer asks to be forgotten: crmkit.privacy erases them in one transaction.
        with store.transaction(actor="dpo") as tx:
            erased = erase_person(tx, company.contacts[len(company.contacts) // 2])
            tx.commit()
        company.facts["erased_fields"] = erased.fields_erased
        company.facts["erased_audit"] = erased.audit_entries_redacted
        company.facts["suppressed"] = erased.suppressed
    return company


def demo(
    out: TextIO,
    *,
    size: int,
    seed: int = 7,
    store: Store | None = None,
    store_name: str = "",
    progress: TextIO | None = None,
) -> int:
    """Simulate the company, store it in ``store`` (a fresh demo file by default), print its KPIs."""
    from crmkit.storage import open_store  # noqa: PLC0415 - the shell opens the store

    write = out.write
    started = time.perf_counter()
    if store is None:
        path = Path(DEMO_STORE)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        store, store_name = open_store(f"sqlite:///{path}"), f"sqlite:///{path}"
    write(
        f"crmkit {__version__} demo: a seeded company ({size:,} lead rows, seed {seed}), "
        f"as of {AS_OF:%Y-%m-%d}, stored in {store_name}\n"
    )
    bar = ProgressBar(progress if progress is not None else sys.stderr)
    try:
        company = _store_company(store, size, seed, bar)
        with store.transaction() as tx:
            data = read_data(tx)
    finally:
        store.close()
    facts = company.facts
    write("\nWhat happened (every step through crmkit's own APIs)\n")
    write(
        f"  leads: {facts['captured']:,} captured (normalised, with UTM tags and consent), "
        f"{facts['rejected']:,} rows rejected, {facts['merged']:,} duplicates merged\n"
    )
    routed = ", ".join(f"{owner} {count}" for owner, count in sorted(company.routed.items()))
    write(f"  routing (territories, round robin, working hours; turns kept in tx.state): {routed}\n")
    stages: dict[str, int] = {}
    for lead in company.leads.values():
        stages[lead.stage] = stages.get(lead.stage, 0) + 1
    write("  lead stages: " + ", ".join(f"{stage} {count:,}" for stage, count in stages.items()) + "\n")
    write(
        f"  {len(company.contacts):,} contacts and {len(company.accounts):,} accounts from conversions, "
        f"{len(company.opportunities):,} deals ({facts['won']:,} won), {len(company.orders):,} orders, "
        f"{len(company.tickets):,} tickets, {len(company.activities):,} campaign e-mails and responses\n"
    )
    write(
        f"  service: the SLA policy raised {facts['sla_breached']:,} first-response breaches; the escalation "
        f"workflow escalated {facts['escalated']:,} high and urgent tickets to second line\n"
    )
    write(
        f"  privacy: one customer asked to be forgotten; erase_person removed {facts['erased_fields']:,} "
        f"personal values, rewrote {facts['erased_audit']:,} audit entries and suppressed "
        f"{facts['suppressed']:,} identifiers (their orders still count in the KPIs)\n"
    )
    for campaign in ("spring-offer-2026", "autumn-offer-2026"):
        write(
            f"  {campaign}: audience {facts[campaign + ':audience']:,} with e-mail consent "
            f"({facts[campaign + ':excluded']:,} customers left out)\n"
        )
    write("\n")
    report = kpi_report(data, as_of=AS_OF, currency=CURRENCY, calendar=business_calendar())
    write(render_text(report))
    write(
        f"\nDone in {time.perf_counter() - started:.1f} s. Explore the same store:\n"
        f"  crmkit report --store {store_name} --as-of {AS_OF:%Y-%m-%d} --html report.html\n"
        f"  crmkit metrics cac --store {store_name} --as-of {AS_OF:%Y-%m-%d}\n"
        f"  crmkit segment rfm --store {store_name} --as-of {AS_OF:%Y-%m-%d} --segment champions\n"
    )
    return 0
