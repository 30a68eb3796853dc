"""The benchmark harness: cases, contenders, timing, agreement checks, the table and the JSON report.

A *case* is one piece of work (say, routing leads through 50 rules) with an input built from a fixed seed.
Each case has *contenders*, crmkit and its peers, that do the same work on the same input. A contender's
``prepare`` is untimed setup (parsing rules, compiling conditions); it returns the timed work, a callable
that processes every item and returns one answer per item. The answers of all contenders must agree, or
the run fails: a benchmark that measures wrong work is worse than none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CASE_MODULES",
    "DEFAULT_REPEAT",
    "SIZES",
    "SLOW_CAP",
    "Case",
    "CaseResult",
    "Contender",
    "ContenderResult",
    "Skip",
    "load_cases",
    "main",
    "run_case",
]

#: Modules that each define one case as a module-level ``CASE`` (or several as ``CASES``); the registry is
#: this tuple.
CASE_MODULES: tuple[str, ...] = (
    "benchmarks.cli",
    "benchmarks.conditions",
    "benchmarks.entities",
    "benchmarks.leads",
    "benchmarks.lifecycle",
    "benchmarks.metrics",
    "benchmarks.privacy",
    "benchmarks.sales",
    "benchmarks.segmentation",
    "benchmarks.storage",
    "benchmarks.workflows",
)

SIZES: tuple[str, ...] = ("tiny", "small", "full")
DEFAULT_REPEAT: Mapping[str, int] = {"tiny": 3, "small": 5, "full": 7, "custom": 7}
#: Items given to contenders marked ``slow`` (peers that need seconds per thousand items), per size.
SLOW_CAP: Mapping[str, int] = {"tiny": 500, "small": 2_000, "full": 5_000, "custom": 5_000}
REFERENCE = "crmkit"
SCHEMA_VERSION = 1
DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"

Work = Callable[[], list[Any]]


class Skip(Exception):
    """Raised by a contender's ``prepare`` when it cannot run here; the reason is reported."""


def postgres_url() -> str:
    """The PostgreSQL database the benchmarks may fill and empty, or a :class:`Skip` saying how to give one.

    ``CRMKIT_BENCH_POSTGRES_URL``, else ``CRMKIT_TEST_POSTGRES_URL`` (the tests' throwaway server).
    """
    url = os.environ.get("CRMKIT_BENCH_POSTGRES_URL") or os.environ.get("CRMKIT_TEST_POSTGRES_URL")
    if not url:
        msg = "set CRMKIT_BENCH_POSTGRES_URL (or CRMKIT_TEST_POSTGRES_URL) to a PostgreSQL database"
        raise Skip(msg)
    return url


@dataclass(frozen=True)
class Contender:
    """One implementation of a case's work.

    Attributes:
        name: the short name shown in the table (``crmkit``, ``rule-engine``).
        prepare: untimed setup; takes the items and returns the timed work. May raise ``Skip`` or
            ``ImportError`` (reported as skipped).
        distribution: the PyPI distribution whose version is reported, if any.
        slow: run on at most ``SLOW_CAP`` items so the run stays short; throughput is per item, so it
            stays comparable.
    """

    name: str
    prepare: Callable[[Sequence[Any]], Work]
    distribution: str | None = None
    slow: bool = False


@dataclass(frozen=True)
class Case:
    """One benchmark: the work, its input and the contenders doing it.

    Attributes:
        name: the ``--case`` name.
        description: one line shown above the table.
        unit: what one item is (``lead``); throughput is items per second.
        sizes: items per size name (``tiny``, ``small``, ``full``).
        make_items: builds the first ``n`` items from a fixed seed (a shorter run uses a prefix).
        contenders: crmkit first, then its peers.
        summarize: describes the answers (to show the work is not degenerate), or ``None``.
    """

    name: str
    description: str
    unit: str
    sizes: Mapping[str, int]
    make_items: Callable[[int], Sequence[Any]]
    contenders: tuple[Contender, ...]
    summarize: Callable[[Sequence[Any]], str] | None = None


@dataclass
class ContenderResult:
    """What one contender did: its status, timings and answers."""

    name: str
    status: str  # "ok", "skipped" or "error"
    n: int = 0
    version: str | None = None
    reason: str | None = None
    times: list[float] = field(default_factory=list)
    answers: list[Any] | None = None
    checksum: str | None = None
    common_checksum: str | None = None
    agrees: bool | None = None

    @property
    def throughputs(self) -> list[float]:
        """Items per second of each timed repetition."""
        return [self.n / t if t > 0 else float("inf") for t in self.times]

    def stats(self) -> dict[str, dict[str, float]]:
        """Median, min and max of the time per repetition and of the throughput."""
        if not self.times:
            return {}
        rates = self.throughputs
        return {
            "time_s": {
                "median": statistics.median(self.times),
                "min": min(self.times),
                "max": max(self.times),
            },
            "throughput_per_s": {
                "median": statistics.median(rates),
                "min": min(rates),
                "max": max(rates),
            },
        }

    def median_throughput(self) -> float | None:
        """The median items per second, or ``None`` when the contender did not run."""
        return statistics.median(self.throughputs) if self.times else None


@dataclass
class CaseResult:
    """The outcome of one case: every contender's result and the problems found."""

    case: Case
    size: str
    n: int
    repeat: int
    contenders: list[ContenderResult]
    problems: list[str] = field(default_factory=list)
    summary: str | None = None

    @property
    def ok(self) -> bool:
        """True when no contender errored and all that ran agreed."""
        return not self.problems

    def common_n(self) -> int | None:
        """The items every contender that ran has answered (the ``common_checksum`` covers those)."""
        counts = [len(c.answers) for c in self.contenders if c.answers is not None]
        return min(counts) if counts else None

    def ratios(self) -> dict[str, float | None]:
        """The ratio of crmkit's median throughput to each peer's (``None`` where either did not run)."""
        by_name = {c.name: c.median_throughput() for c in self.contenders}
        ours = by_name.get(REFERENCE)
        return {
            name: (ours / theirs if ours is not None and theirs else None)
            for name, theirs in by_name.items()
            if name != REFERENCE
        }


def _version(distribution: str | None) -> str | None:
    if distribution is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:  # a source checkout on the path (not installed) still knows its version
        module = importlib.import_module(distribution.replace("-", "_"))
    except ImportError:
        return None
    version = getattr(module, "__version__", None)
    return str(version) if version is not None else None


def checksum(answers: Sequence[Any]) -> str:
    """A short, stable digest of a list of answers (their ``repr``)."""
    return hashlib.sha256(repr(list(answers)).encode()).hexdigest()[:16]


def _timed(work: Work) -> tuple[float, list[Any]]:
    """Run the work once with the collector off, as ``time.perf_counter`` sees it.

    The disk is synced first (untimed), so the writes of an earlier repetition or contender that
    the system is still flushing do not land in this one's time.
    """
    if hasattr(os, "sync"):
        os.sync()
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        answers = work()
        elapsed = time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()
    return elapsed, answers


def _prepare(contender: Contender, items: Sequence[Any], result: ContenderResult) -> Work | None:
    """The contender's timed work, or ``None`` with the result marked skipped or errored."""
    try:
        return contender.prepare(items)
    except Skip as exc:
        result.status, result.reason = "skipped", str(exc)
    except ImportError as exc:
        result.status, result.reason = "skipped", f"not installed ({exc})"
    except Exception as exc:  # noqa: BLE001 - any failure of a contender is reported, then fails the run
        result.status, result.reason = "error", f"setup failed: {exc!r}"
        traceback.print_exc()
    return None


@dataclass
class _Trial:
    """A prepared contender on its items, and the answers of its warm-up."""

    result: ContenderResult
    work: Work
    items: Sequence[Any]
    first: list[Any] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.result.status, self.result.reason = "error", reason

    def warm_up(self) -> None:
        """The untimed first run; its answers are the ones every repetition must reproduce."""
        try:
            self.first = self.work()
        except Exception as exc:  # noqa: BLE001 - as in _prepare
            traceback.print_exc()
            self.fail(f"run failed: {exc!r}")
            return
        if len(self.first) != len(self.items):
            self.fail(f"gave {len(self.first)} answers for {len(self.items)} items")

    def repeat_once(self) -> None:
        """One timed run, kept only when it gives the warm-up's answers."""
        try:
            elapsed, answers = _timed(self.work)
        except Exception as exc:  # noqa: BLE001 - as in _prepare
            traceback.print_exc()
            self.fail(f"run failed: {exc!r}")
            return
        if answers != self.first:
            self.fail("answers changed between repetitions")
            return
        self.result.times.append(elapsed)


def _run_contenders(
    case: Case, items: Sequence[Any], repeat: int, cap: int, log: Callable[[str], None]
) -> list[ContenderResult]:
    """Prepare every contender, warm each up, then time them in turns, one repetition each per round.

    Taking turns spreads a noisy neighbour's load over all contenders instead of the one that happened
    to be running, which keeps the ratios steadier on a shared machine.
    """
    results, trials = [], []
    for contender in case.contenders:
        subset = items[:cap] if contender.slow and cap > 0 else items
        result = ContenderResult(
            name=contender.name, status="ok", n=len(subset), version=_version(contender.distribution)
        )
        results.append(result)
        log(f"  {case.name}: preparing {contender.name} on {len(subset):,} {case.unit}s")
        work = _prepare(contender, subset, result)
        if work is not None:
            trials.append(_Trial(result, work, subset))
    for trial in trials:
        trial.warm_up()
    for round_ in range(repeat):
        log(f"  {case.name}: repetition {round_ + 1} of {repeat}")
        for trial in trials:
            if trial.result.status == "ok":
                trial.repeat_once()
    for trial in trials:
        if trial.result.status == "ok":
            trial.result.answers = trial.first
            trial.result.checksum = checksum(trial.first)
    return results


def _check_agreement(results: list[ContenderResult], items: Sequence[Any]) -> list[str]:
    """Compare every contender's answers with the longest run's, item by item over the shared prefix."""
    ran = [r for r in results if r.answers is not None]
    if not ran:
        return []
    common = min(len(r.answers or ()) for r in ran)
    for result in ran:  # comparable across contenders even when some ran on fewer items
        result.common_checksum = checksum((result.answers or [])[:common])
    # crmkit is the reference where it ran on the most items; otherwise the first longest run.
    longest = max(len(r.answers or ()) for r in ran)
    reference = next(r for r in sorted(ran, key=lambda r: r.name != REFERENCE) if r.n == longest)
    expected = reference.answers or []
    problems = []
    for result in ran:
        answers = result.answers or []
        mismatch = next((i for i, (a, b) in enumerate(zip(answers, expected, strict=False)) if a != b), None)
        result.agrees = mismatch is None
        if mismatch is not None:
            count = sum(a != b for a, b in zip(answers, expected, strict=False))
            problems.append(
                f"{result.name} disagrees with {reference.name} on {count} of {len(answers)} items; "
                f"first at item {mismatch}: {items[mismatch]!r} -> {answers[mismatch]!r}, "
                f"{reference.name} says {expected[mismatch]!r}"
            )
    return problems


def run_case(
    case: Case,
    *,
    size: str = "tiny",
    n: int | None = None,
    repeat: int | None = None,
    slow_cap: int | None = None,
    log: Callable[[str], None] | None = None,
) -> CaseResult:
    """Build the case's input once, run every contender on it and check that they agree.

    Args:
        case: the case to run.
        size: a size name; ignored for the item count when ``n`` is given (then reported as ``custom``).
        n: the number of items, overriding the size.
        repeat: timed repetitions per contender (default by size).
        slow_cap: the most items a ``slow`` contender gets (default by size; 0 means no cap).
        log: where progress lines go.

    Returns:
        The results; ``problems`` lists disagreements and errors.
    """
    if n is not None:
        size = "custom"
    count = n if n is not None else case.sizes[size]
    repeat = repeat if repeat is not None else DEFAULT_REPEAT[size]
    cap = slow_cap if slow_cap is not None else SLOW_CAP[size]
    items = case.make_items(count)
    results = _run_contenders(case, items, repeat, cap, log or (lambda _message: None))
    outcome = CaseResult(case=case, size=size, n=count, repeat=repeat, contenders=results)
    outcome.problems = [f"{r.name}: {r.reason}" for r in results if r.status == "error"]
    outcome.problems += _check_agreement(results, items)
    reference = next((r for r in results if r.name == REFERENCE and r.answers is not None), None)
    reference = reference or next((r for r in results if r.answers is not None), None)
    if case.summarize is not None and reference is not None and reference.answers is not None:
        outcome.summary = f"{case.summarize(reference.answers)} (answers of {reference.name})"
    return outcome


# -- reporting ---------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def format_table(outcome: CaseResult) -> str:
    """The plain-text table of one case: one row per contender."""
    case = outcome.case
    header = (
        "contender",
        "version",
        f"{case.unit}s",
        f"median {case.unit}s/s",
        f"min-max {case.unit}s/s",
        "median time",
        "min-max time",
        "crmkit/peer",
    )
    ratios = outcome.ratios()
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for result in outcome.contenders:
        if result.status != "ok" or not result.times:
            notes.append(f"{result.name}: {result.status}: {result.reason}")
            rows.append((result.name, result.version or "-", "-", result.status, "-", "-", "-", "-"))
            continue
        stats = result.stats()
        rate, took = stats["throughput_per_s"], stats["time_s"]
        ratio = ratios.get(result.name)
        rows.append(
            (
                result.name,
                result.version or "-",
                f"{result.n:,}",
                _rate(rate["median"]),
                f"{_rate(rate['min'])}-{_rate(rate['max'])}",
                _duration(took["median"]),
                f"{_duration(took['min'])}-{_duration(took['max'])}",
                "-" if result.name == REFERENCE else (f"{ratio:,.1f}x" if ratio is not None else "n/a"),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    out = [
        f"case {case.name} ({case.description})",
        (
            f"size {outcome.size}: {outcome.n:,} {case.unit}s, {outcome.repeat} timed repetitions after"
            f" 1 warm-up; throughput is per {case.unit}, so contenders on fewer {case.unit}s stay comparable"
        ),
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(row) for row in rows),
    ]
    if outcome.summary:
        out.append(f"answers: {outcome.summary}")
    out += [f"note: {note}" for note in notes]
    agreeing = [r.name for r in outcome.contenders if r.agrees]
    if outcome.ok:
        out.append(f"agreement: {', '.join(agreeing) or 'nobody ran'} gave the same answers")
    out += [f"PROBLEM: {problem}" for problem in outcome.problems]
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "system": platform.system(),
        "release": platform.release(),
        "node": platform.node(),
    }


def python_info() -> dict[str, Any]:
    """Which Python measured them."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "compiler": platform.python_compiler(),
        "build": list(platform.python_build()),
    }


def to_json(outcomes: Sequence[CaseResult]) -> dict[str, Any]:
    """The report as JSON-ready data: one entry per case, with every contender's stats and the ratios."""
    cases = []
    for outcome in outcomes:
        contenders = []
        for result in outcome.contenders:
            entry: dict[str, Any] = {
                "name": result.name,
                "version": result.version,
                "status": result.status,
                "reason": result.reason,
                "n": result.n if result.status == "ok" else None,
                "checksum": result.checksum,
                "common_checksum": result.common_checksum,
                "agrees": result.agrees,
                "times_s": result.times,
            }
            entry.update(result.stats())
            contenders.append(entry)
        cases.append(
            {
                "case": outcome.case.name,
                "description": outcome.case.description,
                "unit": outcome.case.unit,
                "size": outcome.size,
                "n": outcome.n,
                "repeat": outcome.repeat,
                "throughput_unit": f"{outcome.case.unit}s per second (per item: n may differ per contender)",
                "ratio_definition": f"{REFERENCE} median throughput / peer median throughput",
                "common_n": outcome.common_n(),
                "ok": outcome.ok,
                "problems": outcome.problems,
                "summary": outcome.summary,
                "contenders": contenders,
                "ratios": outcome.ratios(),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "python": python_info(),
        "cases": cases,
    }


# -- command line ------------------------------------------------------------------------------------


def load_cases() -> dict[str, Case]:
    """The registered cases by name."""
    cases = []
    for name in CASE_MODULES:
        module = importlib.import_module(name)
        cases += getattr(module, "CASES", None) or [module.CASE]
    return {case.name: case for case in cases}


def _parser(case_names: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time crmkit against its peers on the same work and check that they agree.",
    )
    parser.add_argument("--size", choices=SIZES, default="full", help="input size (default: full)")
    parser.add_argument("--n", type=int, help="number of items, overriding --size")
    parser.add_argument(
        "--repeat", type=int, help="timed repetitions per contender (default: 7 full, 5 small, 3 tiny)"
    )
    parser.add_argument(
        "--case", action="append", choices=case_names, help="run only this case (repeatable; default: all)"
    )
    parser.add_argument(
        "--slow-cap",
        type=int,
        help="most items for slow peers (default: 500 tiny, 2,000 small, 5,000 full; 0 = no cap)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the JSON report (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected cases, print their tables, write the JSON report.

    Returns:
        0 when every contender that ran agreed and none errored, 1 otherwise.
    """
    cases = load_cases()
    args = _parser(sorted(cases)).parse_args(argv)
    if args.n is not None and args.n < 1:
        print("--n must be at least 1", file=sys.stderr)
        return 2
    if args.repeat is not None and args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    selected = [cases[name] for name in (args.case or sorted(cases))]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    outcomes = []
    for case in selected:
        outcome = run_case(
            case, size=args.size, n=args.n, repeat=args.repeat, slow_cap=args.slow_cap, log=log
        )
        outcomes.append(outcome)
        print(format_table(outcome), end="\n\n", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(to_json(outcomes), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    failed = [outcome.case.name for outcome in outcomes if not outcome.ok]
    if failed:
        print(
            f"FAILED: {', '.join(failed)}: contenders disagree or errored (see PROBLEM lines)",
            file=sys.stderr,
        )
        return 1
    return 0
