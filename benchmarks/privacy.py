"""Privacy cases: consent checks at send time, and erasure of people from a SQLite store.

``privacy-consent`` decides, for each planned message (a person, a channel, a purpose, a send time), whether
consent allows it, against 20 consent records per 1,000 people on average (grants, refusals, withdrawals,
expiries, channel-wide and per-channel). crmkit's ``ConsentLedger.allows`` (records indexed by person and
sorted once) is compared with ``crmkit.segmentation.consent_problem`` fed each person's records from a dict
(the audience builder's way) and with raw ``sqlite3``: the latest applicable record per check from an
indexed table. The answer per message is the reason (``granted`` or why not).

``privacy-erasure`` erases people one transaction each from a SQLite store holding, per person, a contact,
a lead, two orders, a ticket, an activity and a consent (``erase_person``: find, anonymise, redact the
audit log, suppress). There is no peer library doing GDPR erasure over a CRM schema; the figure is
crmkit's throughput, and the answer per person is how many records changed.
"""

from __future__ import annotations

import atexit
import random
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "SEED", "make_checks"]

SEED = 10_010
START = datetime(2025, 1, 1, tzinfo=UTC)
CHANNELS = ("email", "sms", "phone", "post")
PURPOSES = ("marketing", "profiling", "service")
PEOPLE = 5_000
_RUNS = 8  # the warm-up and up to seven timed repetitions


def _consents(seed: int = SEED) -> list[Any]:
    from crmkit.entities import Consent, ConsentStatus, EntityRef  # noqa: PLC0415 - imported when run

    rng = random.Random(seed)
    records = []
    for person in range(PEOPLE):
        for _ in range(rng.randint(0, 8)):
            at = START + timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
            status = rng.choice(
                (ConsentStatus.GRANTED,) * 3 + (ConsentStatus.DENIED, ConsentStatus.WITHDRAWN)
            )
            withdrawn = (
                at + timedelta(days=rng.randrange(1, 200)) if status is ConsentStatus.WITHDRAWN else None
            )
            expires = at + timedelta(days=rng.randrange(30, 700)) if rng.random() < 0.3 else None
            records.append(
                Consent(
                    subject=EntityRef("contact", f"p{person}"),
                    purpose=rng.choice(PURPOSES),
                    channel=rng.choice((*CHANNELS, None)),
                    status=status,
                    wording="ok",
                    source="bench",
                    captured_at=at,
                    withdrawn_at=withdrawn,
                    expires_at=expires,
                    created_at=at,
                )
            )
    return records


_CONSENTS: list[Any] = []


def consents() -> list[Any]:
    """The consent records (built once per process)."""
    if not _CONSENTS:
        _CONSENTS.extend(_consents())
    return _CONSENTS


def make_checks(n: int, seed: int = SEED) -> list[tuple[str, str, str, datetime]]:
    """The first ``n`` planned messages: person, channel, purpose, send time."""
    rng = random.Random(seed + 1)
    return [
        (
            f"p{rng.randrange(PEOPLE)}",
            rng.choice(CHANNELS),
            rng.choice(PURPOSES),
            START + timedelta(days=rng.randrange(500), minutes=rng.randrange(1440)),
        )
        for _ in range(n)
    ]


def _ledger(items: Sequence[tuple[str, str, str, datetime]]) -> Work:
    from crmkit.privacy import ConsentLedger  # noqa: PLC0415 - imported when run

    ledger = ConsentLedger(consents())

    def work() -> list[Any]:
        return [
            str(ledger.allows(person, channel, purpose, at).reason) for person, channel, purpose, at in items
        ]

    return work


def _segmentation(items: Sequence[tuple[str, str, str, datetime]]) -> Work:
    from crmkit.entities import Channel  # noqa: PLC0415 - imported when run
    from crmkit.segmentation import consent_problem  # noqa: PLC0415 - imported when run

    by_person: dict[str, list[Any]] = {}
    for consent in consents():
        by_person.setdefault(consent.subject.id, []).append(consent)
    typed = [(person, Channel(channel), purpose, at) for person, channel, purpose, at in items]

    def work() -> list[Any]:
        answers = []
        for person, channel, purpose, at in typed:
            problem = consent_problem(by_person.get(person, ()), channel=channel, purpose=purpose, at=at)
            answers.append("granted" if problem is None else str(problem))
        return answers

    return work


_LATEST = """
SELECT status, withdrawn_at, expires_at FROM consent
WHERE subject = ? AND purpose = ? AND (channel IS NULL OR channel = ?) AND captured_at <= ?
ORDER BY captured_at DESC, status = 'granted' LIMIT 1
"""


def _sqlite(items: Sequence[tuple[str, str, str, datetime]]) -> Work:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE consent (subject TEXT, purpose TEXT, channel TEXT, status TEXT, captured_at TEXT,"
        " withdrawn_at TEXT, expires_at TEXT)"
    )
    db.execute("CREATE INDEX consent_subject ON consent (subject, purpose, captured_at)")

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(UTC).isoformat()

    db.executemany(
        "INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c.subject.id,
                c.purpose,
                None if c.channel is None else str(c.channel),
                str(c.status),
                iso(c.captured_at),
                iso(c.withdrawn_at),
                iso(c.expires_at),
            )
            for c in consents()
        ],
    )
    rows = [(person, purpose, channel, iso(at)) for person, channel, purpose, at in items]

    def work() -> list[Any]:
        answers = []
        for person, purpose, channel, at in rows:
            found = db.execute(_LATEST, (person, purpose, channel, at)).fetchone()
            if found is None:
                answers.append("no_consent")
            elif found[0] == "denied":
                answers.append("consent_denied")
            elif found[1] is not None and found[1] <= at:
                answers.append("consent_withdrawn")
            elif found[2] is not None and found[2] <= at:
                answers.append("consent_expired")
            else:
                answers.append("granted")
        return answers

    return work


def _reasons(answers: Sequence[Any]) -> str:
    granted = sum(1 for answer in answers if answer == "granted")
    return f"{granted} of {len(answers)} messages allowed"


CONSENT_CASE = Case(
    name="privacy-consent",
    description="consent check per planned message (person, channel, purpose, send time)",
    unit="check",
    sizes={"tiny": 2_000, "small": 20_000, "full": 200_000},
    make_items=make_checks,
    contenders=(
        Contender("crmkit", _ledger),
        Contender("segmentation.consent_problem", _segmentation),
        Contender("sqlite3", _sqlite),
    ),
    summarize=_reasons,
)


def _people(n: int) -> list[int]:
    return list(range(n))


def _erasure(items: Sequence[int]) -> Work:
    from crmkit.clock import FixedClock  # noqa: PLC0415 - imported when run
    from crmkit.entities import (  # noqa: PLC0415 - imported when run
        Activity,
        ActivityKind,
        Consent,
        Contact,
        EntityRef,
        Lead,
        LineItem,
        Order,
        Ticket,
    )
    from crmkit.money import Money  # noqa: PLC0415 - imported when run
    from crmkit.privacy import add_lookup_indexes, erase_person, grant_consent  # noqa: PLC0415 - imported when run
    from crmkit.storage import open_store  # noqa: PLC0415 - imported when run

    folder = Path(tempfile.mkdtemp(prefix="crmkit-privacy-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)

    def filled(index: int) -> Any:
        store = open_store(f"sqlite:///{folder / f'crm{index}.db'}", clock=FixedClock(START))
        add_lookup_indexes(store)
        with store.transaction(actor="bench") as tx:
            for n in items:
                contact = Contact(id=f"c{n}", first_name="Ada", last_name=f"L{n}", email=f"p{n}@example.org")
                tx[Contact].add(contact)
                tx[Lead].add(Lead(id=f"l{n}", email=f"p{n}@example.org", converted_contact_id=contact.id))
                for k in range(2):
                    line = LineItem(quantity=Decimal(1), unit_price=Money("10", "EUR"))
                    tx[Order].add(
                        Order(number=f"{n}-{k}", contact_id=contact.id, currency="EUR", lines=(line,))
                    )
                tx[Ticket].add(Ticket(subject=f"Help L{n}", contact_id=contact.id))
                tx[Activity].add(
                    Activity(activity_type=ActivityKind.NOTE, body=f"Met L{n}", contact_id=contact.id)
                )
                tx[Consent].add(
                    grant_consent(
                        contact, purpose="marketing", channel="email", wording="News", source="form", at=START
                    )
                )
            tx.commit()
        return store

    # Erasing twice changes nothing, so each run (the warm-up and every repetition) gets its own filled
    # store, built here, untimed.
    stores = [filled(index) for index in range(_RUNS)]

    def work() -> list[Any]:
        store = stores.pop() if stores else filled(_RUNS + len(items))  # more repetitions than built: timed
        answers = []
        for n in items:
            with store.transaction(actor="dpo") as tx:
                answers.append(len(erase_person(tx, EntityRef("contact", f"c{n}")).changed))
                tx.commit()
        store.close()
        return answers

    return work


ERASURE_CASE = Case(
    name="privacy-erasure",
    description="erase one person per transaction from a SQLite store (find, anonymise, redact, suppress)",
    unit="person",
    sizes={"tiny": 50, "small": 200, "full": 1_000},
    make_items=_people,
    contenders=(Contender("crmkit", _erasure),),
)

CASES = (CONSENT_CASE, ERASURE_CASE)
