"""Property tests: any sequence of transitions on any built-in lifecycle applies or raises, and never
leaves a record in a stage the definition does not allow; history times never go backwards."""

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.entities import Contact, Lead, Opportunity, Ticket
from crmkit.errors import TransitionError, ValidationError
from crmkit.lifecycle import LIFECYCLES, Lifecycle, time_in_stage
from crmkit.money import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def new_record(lifecycle: Lifecycle):
    """A record of the lifecycle's kind, in its initial stage, with fields that let some guards pass."""
    fields = {"created_at": T0, "stage": lifecycle.initial}
    if lifecycle.entity == "lead":
        return Lead(email="ada@example.com", **fields)
    if lifecycle.entity == "opportunity":
        return Opportunity(name="Deal", amount=Money("100", "EUR"), **fields)
    if lifecycle.entity == "ticket":
        return Ticket(subject="Help", **fields)
    return Contact(email="ada@example.com", **fields)


PAYLOADS = {
    "lead": st.sampled_from(
        [None, {"custom_fields": {"disqualification_reason": "no budget"}}, {"phone": None}]
    ),
    "opportunity": st.sampled_from([None, {"lost_reason": "price"}, {"amount": None}]),
    "ticket": st.sampled_from([None, {"description": "more details"}]),
    "contact": st.sampled_from([None, {"title": "CTO"}]),
}


@st.composite
def journeys(draw):
    lifecycle = draw(st.sampled_from(list(LIFECYCLES.values())))
    names = [transition.name for transition in lifecycle.transitions] + ["no_such_transition"]
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(names),
                st.integers(min_value=-2, max_value=48).map(lambda hours: timedelta(hours=hours)),
                PAYLOADS[lifecycle.entity],
                st.sampled_from([None, "u-1", "bad actor"]),
            ),
            max_size=25,
        )
    )
    return lifecycle, steps


@settings(max_examples=300, deadline=None)
@given(journeys())
def test_any_sequence_of_transitions_applies_or_raises_and_keeps_the_record_valid(journey):
    lifecycle, steps = journey
    stages = {stage.name for stage in lifecycle.stages}
    record = new_record(lifecycle)
    at = T0
    for name, step, payload, actor in steps:
        before = attrs.asdict(record, recurse=False)
        allowed = name in lifecycle.allowed_transitions(record.stage)
        refused: Exception | None = None
        try:
            moved, event = lifecycle.apply(record, name, at=at + step, payload=payload, actor=actor)
        except (TransitionError, ValidationError) as error:
            refused = error
        if refused is not None:
            assert attrs.asdict(record, recurse=False) == before  # nothing changed
            if isinstance(refused, TransitionError):
                assert refused.stage == record.stage
                assert refused.transition == name
            continue
        assert allowed
        assert step >= timedelta()
        assert moved.stage in stages
        assert moved.stage == lifecycle.transition(name).target
        assert moved.stage_history[:-1] == record.stage_history
        assert moved.stage_history[-1].at == event.at == at + step
        assert (event.from_stage, event.to_stage) == (record.stage, moved.stage)
        record, at = moved, at + step
    times = [change.at for change in record.stage_history]
    assert times == sorted(times)
    assert all(change.to_stage in stages for change in record.stage_history)
    assert all(
        earlier.to_stage == later.from_stage
        for earlier, later in zip(record.stage_history, record.stage_history[1:], strict=False)
    )
    spent = time_in_stage(record, as_of=at)
    assert set(spent) <= stages
    assert sum(spent.values(), timedelta()) == at - T0


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(list(LIFECYCLES.values())), st.randoms(use_true_random=False))
def test_a_random_walk_through_allowed_transitions_stays_inside_the_definition(lifecycle, rng):
    record = new_record(lifecycle)
    for hour in range(30):
        allowed = lifecycle.allowed_transitions(record.stage)
        if not allowed:
            assert lifecycle.stage(record.stage).terminal
            break
        name = rng.choice(allowed)
        payload = {"lost_reason": "price"} if lifecycle.entity == "opportunity" else None
        if lifecycle.entity == "lead":
            payload = {"custom_fields": {"disqualification_reason": "no budget"}}
        try:
            record, _ = lifecycle.apply(record, name, at=T0 + timedelta(hours=hour), payload=payload)
        except TransitionError as error:
            reasons = error.reasons
        else:
            reasons = ()
        # Only a guard or a required field may refuse an allowed move.
        assert all(reason.startswith(("guard failed", "required field")) for reason in reasons)
        assert record.stage in {stage.name for stage in lifecycle.stages}
