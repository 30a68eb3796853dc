"""The ``lifecycle-*`` cases: leads moving through a 5-stage lifecycle, and leads created in its first stage.

The lifecycle every contender implements: stages ``new``, ``contacted``, ``qualified``, ``converted``,
``disqualified``; transitions ``contact`` (new -> contacted), ``qualify`` (contacted -> qualified, guarded by
``score >= 30``), ``convert`` (qualified -> converted), ``disqualify`` (new, contacted or qualified ->
disqualified) and ``recycle`` (disqualified -> contacted).

* ``lifecycle-transition``: each lead takes three transitions, ``contact, qualify, convert`` when its
  score passes the guard, else ``contact, disqualify, recycle``; every transition checks its source stage
  (and the guard), appends ``(from, to, transition, actor, at)`` to the lead's history and, for crmkit,
  returns a new lead and a ``StageChanged`` event. The answer per lead is its final stage and the stages
  in its history. Peers: ``transitions`` (one ``Machine`` bound to each model, its standard setup,
  history appended in ``after_state_change``), ``transitions-static`` (the setup its FAQ recommends
  for thousands of models: one class-level ``Machine(model=None)`` whose events are triggered with
  the model, which then holds only its state), ``python-statemachine`` (one machine per model,
  history appended in ``after_transition``) and a hand-written dict-lookup machine, the floor.
* ``lifecycle-create``: build each lead in the lifecycle's initial stage, ready to take transitions. For
  crmkit that is the ``Lead`` itself (its stage is a plain field); the peers bind a machine to each model
  (``transitions-static`` only sets the model's state: its machine is shared). The answer is the lead's
  stage. The summary line also reports memory per lead, measured with ``tracemalloc``: what crmkit's
  ``Lead`` takes and what each peer's model plus its machine takes.

Leads come from a fixed seed, so every run (and every size, a prefix of the same stream) does the same
work. The peers' models are reset to ``new`` with an empty history at the start of each lead's script
(two attribute stores), since they change in place; crmkit's leads are immutable and need no reset.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Case, Contender

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.harness import Work

__all__ = ["CASES", "SCRIPTS", "SEED", "STAGES", "make_leads"]

SEED = 20_260_301
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AT = T0 + timedelta(days=1)
ACTOR = "bench-user"
MIN_SCORE = 30
STAGES: tuple[str, ...] = ("new", "contacted", "qualified", "converted", "disqualified")
# Each transition by name: the stages it starts from and the stage it moves to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "contact": (("new",), "contacted"),
    "qualify": (("contacted",), "qualified"),
    "convert": (("qualified",), "converted"),
    "disqualify": (("new", "contacted", "qualified"), "disqualified"),
    "recycle": (("disqualified",), "contacted"),
}
SCRIPTS: dict[bool, tuple[str, str, str]] = {
    True: ("contact", "qualify", "convert"),
    False: ("contact", "disqualify", "recycle"),
}
TRANSITIONS_PER_LEAD = 3

Answer = tuple[str, tuple[str, ...]]


def make_leads(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The first ``n`` leads of the seeded stream: an email and a score from 0 to 100 (70% pass the guard)."""
    rng = random.Random(seed)
    return [{"email": f"lead{i}@example.com", "score": rng.randint(0, 100)} for i in range(n)]


def _script(lead: dict[str, Any]) -> tuple[str, str, str]:
    return SCRIPTS[lead["score"] >= MIN_SCORE]


def summarize(answers: Sequence[Answer]) -> str:
    """How the leads ended: converted (guard passed) or recycled into contacted."""
    converted = sum(1 for stage, _ in answers if stage == "converted")
    return (
        f"{converted:,} of {len(answers):,} leads converted, {len(answers) - converted:,} recycled;"
        f" {TRANSITIONS_PER_LEAD * len(answers):,} transitions"
    )


# -- crmkit --------------------------------------------------------------------------------------


def bench_lifecycle() -> Any:
    """The benchmark's lifecycle as a crmkit definition."""
    from crmkit.conditions import field  # noqa: PLC0415 - a missing crmkit skips, not fails
    from crmkit.lifecycle import Lifecycle, Stage, StageCategory, Transition  # noqa: PLC0415

    categories = {"converted": StageCategory.WON, "disqualified": StageCategory.LOST}
    return Lifecycle(
        "bench_lead",
        "lead",
        [
            Stage(name, category=categories.get(name, StageCategory.OPEN), terminal=name == "converted")
            for name in STAGES
        ],
        [
            Transition(
                name,
                sources,
                target,
                guard=field("score").ge(MIN_SCORE) if name == "qualify" else None,
            )
            for name, (sources, target) in TRANSITIONS.items()
        ],
        description="the benchmark's 5-stage lead lifecycle",
    )


def _crmkit_transition(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.entities import Lead  # noqa: PLC0415

    lifecycle = bench_lifecycle()
    apply = lifecycle.apply
    records = [
        (Lead(email=lead["email"], score=lead["score"], created_at=T0), _script(lead)) for lead in leads
    ]

    def work() -> list[Answer]:
        answers = []
        for lead, script in records:
            record = lead
            for name in script:
                record, _event = apply(record, name, actor=ACTOR, at=AT)
            answers.append((record.stage, tuple(change.to_stage for change in record.stage_history)))
        return answers

    return work


def _crmkit_create(leads: Sequence[dict[str, Any]]) -> Work:
    from crmkit.entities import Lead  # noqa: PLC0415

    initial = bench_lifecycle().initial

    def work() -> list[str]:
        return [
            Lead(email=lead["email"], score=lead["score"], stage=initial, created_at=T0).stage
            for lead in leads
        ]

    return work


# -- transitions ---------------------------------------------------------------------------------------


class _TransitionsLead:
    """The model ``transitions`` binds its machine to: the lead's fields plus a history list."""

    def __init__(self, email: str, score: int) -> None:
        self.email = email
        self.score = score
        self.history: list[tuple[str, str, str, str, datetime]] = []

    def passes_guard(self, _event: Any) -> bool:
        return self.score >= MIN_SCORE

    def record(self, event: Any) -> None:
        transition = event.transition
        self.history.append((transition.source, transition.dest, event.event.name, ACTOR, AT))


def _transitions_factory() -> Callable[[dict[str, Any]], Any]:
    from transitions import Machine  # noqa: PLC0415 - an optional peer

    specs = [
        {
            "trigger": name,
            "source": list(sources),
            "dest": target,
            **({"conditions": "passes_guard"} if name == "qualify" else {}),
        }
        for name, (sources, target) in TRANSITIONS.items()
    ]

    def create(lead: dict[str, Any]) -> Any:
        model = _TransitionsLead(lead["email"], lead["score"])
        Machine(
            model=model,
            states=list(STAGES),
            transitions=specs,
            initial="new",
            auto_transitions=False,
            send_event=True,
            after_state_change="record",
        )
        return model

    return create


class _StaticTransitionsLead:
    """The model of the setup ``transitions`` recommends for thousands of models: one machine per class.

    Its FAQ ("memory footprint is too large ... and adding models takes too long") keeps a single
    ``Machine(model=None, ...)`` on the class and triggers its events with the model as argument, so a
    model is a plain object holding its state: no machine and no bound trigger methods per model.
    """

    machine: Any = None  # set by _static_machine: the one machine every model shares

    def __init__(self, email: str, score: int) -> None:
        self.email = email
        self.score = score
        self.state = "new"
        self.history: list[tuple[str, str, str, str, datetime]] = []

    def passes_guard(self, _event: Any) -> bool:
        return self.score >= MIN_SCORE

    def record(self, event: Any) -> None:
        transition = event.transition
        self.history.append((transition.source, transition.dest, event.event.name, ACTOR, AT))


def _static_machine() -> dict[str, Any]:
    """The shared machine's events by name (the FAQ's class-level machine), set on the model class."""
    from transitions import Machine  # noqa: PLC0415 - an optional peer

    machine = Machine(
        model=None,
        states=list(STAGES),
        transitions=[
            {
                "trigger": name,
                "source": list(sources),
                "dest": target,
                **({"conditions": "passes_guard"} if name == "qualify" else {}),
            }
            for name, (sources, target) in TRANSITIONS.items()
        ],
        initial=None,
        auto_transitions=False,
        send_event=True,
        after_state_change="record",
    )
    _StaticTransitionsLead.machine = machine
    return dict(machine.events)


def _transitions_static_transition(leads: Sequence[dict[str, Any]]) -> Work:
    events = _static_machine()
    models = [(_StaticTransitionsLead(lead["email"], lead["score"]), _script(lead)) for lead in leads]

    def work() -> list[Answer]:
        answers = []
        for model, script in models:
            model.state, model.history = "new", []
            for name in script:
                if not events[name].trigger(model):  # a failed guard returns False instead of raising
                    msg = f"{name} refused"
                    raise RuntimeError(msg)
            answers.append((model.state, tuple(entry[1] for entry in model.history)))
        return answers

    return work


def _transitions_static_create(leads: Sequence[dict[str, Any]]) -> Work:
    _static_machine()

    def work() -> list[str]:
        return [_StaticTransitionsLead(lead["email"], lead["score"]).state for lead in leads]

    return work


def _transitions_transition(leads: Sequence[dict[str, Any]]) -> Work:
    create = _transitions_factory()
    models = [(create(lead), _script(lead)) for lead in leads]

    def work() -> list[Answer]:
        answers = []
        for model, script in models:
            model.state, model.history = "new", []
            for name in script:
                if not model.trigger(name):  # a failed guard returns False instead of raising
                    msg = f"{name} refused"
                    raise RuntimeError(msg)
            answers.append((model.state, tuple(entry[1] for entry in model.history)))
        return answers

    return work


def _transitions_create(leads: Sequence[dict[str, Any]]) -> Work:
    create = _transitions_factory()

    def work() -> list[str]:
        return [create(lead).state for lead in leads]

    return work


# -- python-statemachine ---------------------------------------------------------------------------------


class _StatemachineLead:
    """The model a ``python-statemachine`` machine keeps its state on."""

    def __init__(self, email: str, score: int) -> None:
        self.email = email
        self.score = score
        self.state: str | None = None
        self.history: list[tuple[str, str, str, str, datetime]] = []

    def passes_guard(self) -> bool:
        return self.score >= MIN_SCORE


def _statemachine_class() -> type:
    from statemachine import State, StateMachine  # noqa: PLC0415 - an optional peer

    class LeadMachine(StateMachine):  # type: ignore[misc]
        new = State(initial=True)
        contacted = State()
        qualified = State()
        converted = State(final=True)
        disqualified = State()

        contact = new.to(contacted)
        qualify = contacted.to(qualified, cond="passes_guard")
        convert = qualified.to(converted)
        disqualify = new.to(disqualified) | contacted.to(disqualified) | qualified.to(disqualified)
        recycle = disqualified.to(contacted)

        def after_transition(self, event: Any, source: Any, target: Any) -> None:
            self.model.history.append((source.id, target.id, str(event), ACTOR, AT))

    return LeadMachine


def _statemachine_transition(leads: Sequence[dict[str, Any]]) -> Work:
    machine_class = _statemachine_class()
    machines = [
        (machine_class(model=_StatemachineLead(lead["email"], lead["score"])), _script(lead))
        for lead in leads
    ]

    def work() -> list[Answer]:
        answers = []
        for machine, script in machines:
            model = machine.model
            model.state, model.history = "new", []
            machine._engine.running = True  # noqa: SLF001 - reaching a final state stops the engine; restart it
            for name in script:
                machine.send(name)
            answers.append((model.state, tuple(entry[1] for entry in model.history)))
        return answers

    return work


def _statemachine_create(leads: Sequence[dict[str, Any]]) -> Work:
    machine_class = _statemachine_class()

    def work() -> list[str]:
        return [
            machine_class(model=_StatemachineLead(lead["email"], lead["score"])).model.state for lead in leads
        ]

    return work


# -- the hand-written floor ----------------------------------------------------------------------------


def _floor_transition(leads: Sequence[dict[str, Any]]) -> Work:
    table = {(source, name): target for name, (sources, target) in TRANSITIONS.items() for source in sources}
    guards: dict[str, Callable[[dict[str, Any]], bool]] = {"qualify": lambda r: r["score"] >= MIN_SCORE}
    records = [({"email": lead["email"], "score": lead["score"]}, _script(lead)) for lead in leads]

    def work() -> list[Answer]:
        answers = []
        for record, script in records:
            record["stage"], record["history"] = "new", []
            for name in script:
                stage = record["stage"]
                target = table.get((stage, name))
                guard = guards.get(name)
                if target is None or (guard is not None and not guard(record)):
                    msg = f"{name} refused"
                    raise RuntimeError(msg)
                record["history"].append((stage, target, name, ACTOR, AT))
                record["stage"] = target
            answers.append((record["stage"], tuple(entry[1] for entry in record["history"])))
        return answers

    return work


def _floor_create(leads: Sequence[dict[str, Any]]) -> Work:
    def work() -> list[str]:
        return [
            {"email": lead["email"], "score": lead["score"], "stage": "new", "history": []}["stage"]
            for lead in leads
        ]

    return work


# -- memory per lead -------------------------------------------------------------------------------------


def _empty_id_pool() -> None:
    """Start a crmkit measurement with no ids drawn ahead.

    crmkit draws record ids in batches; the ids of a batch not yet handed out are no lead's memory,
    yet tracemalloc counts them where the batch was drawn. Emptied before each crmkit measurement,
    every one ends with the same few spare ids, so none is charged more than another.
    """
    from crmkit import entities  # noqa: PLC0415 - a missing crmkit skips, not fails

    entities._ids.clear()  # noqa: SLF001 - the benchmark's own bookkeeping, not crmkit's behaviour


def _bytes_per_item(build: Callable[[dict[str, Any]], Any], leads: Sequence[dict[str, Any]]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [build(lead) for lead in leads]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / len(leads)


def memory_per_lead(n: int = 1_000) -> dict[str, float | None]:
    """Bytes per lead ready for transitions, by contender (``None`` where the peer is missing).

    ``crmkit-lifecycle-overhead`` is what being in a lifecycle adds to a crmkit ``Lead``: the lead in
    the lifecycle's initial stage minus a lead built without naming any stage.
    """
    from crmkit.entities import Lead  # noqa: PLC0415

    leads = make_leads(n)
    initial = bench_lifecycle().initial
    sizes: dict[str, float | None] = {}
    # The lead without a stage first, so warming up any cache is not charged to the lifecycle.
    _empty_id_pool()
    sizes["crmkit-without-lifecycle"] = _bytes_per_item(
        lambda lead: Lead(email=lead["email"], score=lead["score"], created_at=T0), leads
    )
    _empty_id_pool()
    sizes["crmkit"] = _bytes_per_item(
        lambda lead: Lead(email=lead["email"], score=lead["score"], stage=initial, created_at=T0), leads
    )
    sizes["plain-model"] = _bytes_per_item(lambda lead: _TransitionsLead(lead["email"], lead["score"]), leads)
    crmkit = sizes["crmkit"] or 0.0
    sizes["crmkit-lifecycle-overhead"] = max(crmkit - (sizes["crmkit-without-lifecycle"] or 0.0), 0.0)
    try:
        sizes["transitions"] = _bytes_per_item(_transitions_factory(), leads)
        _static_machine()
        sizes["transitions-static"] = _bytes_per_item(
            lambda lead: _StaticTransitionsLead(lead["email"], lead["score"]), leads
        )
    except ImportError:
        sizes["transitions"] = sizes["transitions-static"] = None
    try:
        machine_class = _statemachine_class()
        sizes["python-statemachine"] = _bytes_per_item(
            lambda lead: machine_class(model=_StatemachineLead(lead["email"], lead["score"])), leads
        )
    except ImportError:
        sizes["python-statemachine"] = None
    return sizes


def summarize_create(answers: Sequence[str]) -> str:
    """The leads' stages, and the memory each contender needs per lead."""
    sizes = memory_per_lead()
    memory = ", ".join(
        f"{name} {size / 1024:.2f} KB" if size is not None else f"{name} n/a" for name, size in sizes.items()
    )
    stages = sorted(set(answers))
    return f"{len(answers):,} leads in stage {', '.join(stages)}; memory per lead (tracemalloc): {memory}"


CASES = [
    Case(
        name="lifecycle-transition",
        description="3 transitions per lead through a 5-stage lifecycle with one guard, history appended",
        unit="lead",
        sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
        make_items=make_leads,
        contenders=(
            Contender("crmkit", _crmkit_transition, distribution="crmkit"),
            Contender("hand-written", _floor_transition),
            Contender("transitions", _transitions_transition, distribution="transitions", slow=True),
            Contender(
                "transitions-static", _transitions_static_transition, distribution="transitions", slow=True
            ),
            Contender(
                "python-statemachine",
                _statemachine_transition,
                distribution="python-statemachine",
                slow=True,
            ),
        ),
        summarize=summarize,
    ),
    Case(
        name="lifecycle-create",
        description="create leads in the lifecycle's initial stage, ready for transitions",
        unit="lead",
        sizes={"tiny": 2_000, "small": 20_000, "full": 100_000},
        make_items=make_leads,
        contenders=(
            Contender("crmkit", _crmkit_create, distribution="crmkit"),
            Contender("hand-written", _floor_create),
            Contender("transitions", _transitions_create, distribution="transitions", slow=True),
            Contender("transitions-static", _transitions_static_create, distribution="transitions"),
            Contender(
                "python-statemachine", _statemachine_create, distribution="python-statemachine", slow=True
            ),
        ),
        summarize=summarize_create,
    ),
]
