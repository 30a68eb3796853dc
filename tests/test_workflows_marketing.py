"""Trigger marketing: a personalised offer in reaction to an event, with consent and a frequency cap."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from crmkit._validation import rules, short_label
from crmkit.entities import Activity, Consent, Contact, EntityRef
from crmkit.events import DomainEvent, EntityCreated, register_event
from crmkit.workflows import RecordingChannel, RunStatus, Services, Workflow, WorkflowEngine, consent_problem

T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
ADA = Contact(first_name="Ada", email="ada@example.com", created_at=T0 - timedelta(days=400))


@register_event("test_category_bought")
@attrs.frozen(kw_only=True)
class CategoryBought(DomainEvent):
    """A customer bought from a product category (a host's own event)."""

    category: str = attrs.field(metadata=rules(short_label))


def consent(**changes):
    fields = {
        "subject": EntityRef.to(ADA),
        "purpose": "offers",
        "channel": "email",
        "status": "granted",
        "captured_at": T0 - timedelta(days=30),
    }
    fields.update(changes)
    return Consent(**fields)


def cross_sell(**params):
    return Workflow.from_json(
        {
            "name": "cross-sell-garden",
            "entity": "contact",
            "trigger": {"type": "event", "event": "test_category_bought"},
            "event_conditions": {"field": "category", "op": "eq", "value": "garden"},
            "reenrolment": {"policy": "every_time"},
            "steps": [
                {
                    "action": "send_message",
                    "params": {
                        "channel": "email",
                        "purpose": "offers",
                        "subject": "For your {event.category}, {first_name}",
                        "body": "Hi {first_name}, 10% off garden tools this week.",
                        **params,
                    },
                }
            ],
        }
    )


def engine_for(flow, consents, channel):
    return WorkflowEngine(
        [flow], services=Services(channels={"email": channel}, consents=lambda _ref: consents)
    )


def bought(at=T0, category="garden"):
    return CategoryBought(entity=EntityRef.to(ADA), category=category, at=at)


def test_a_purchase_in_a_category_sends_a_personalised_offer_with_consent():
    channel = RecordingChannel()
    result = engine_for(cross_sell(), [consent()], channel).handle(bought(), record=ADA, now=T0)
    assert result.traces[0].status is RunStatus.COMPLETED
    (message,) = channel.messages
    assert message.subject == "For your garden, Ada"
    assert message.body == "Hi Ada, 10% off garden tools this week."
    assert (message.address, message.purpose, message.to) == ("ada@example.com", "offers", EntityRef.to(ADA))


def test_a_purchase_in_another_category_sends_nothing():
    channel = RecordingChannel()
    result = engine_for(cross_sell(), [consent()], channel).handle(
        bought(category="books"), record=ADA, now=T0
    )
    assert result.traces[0].reason == "conditions did not hold"
    assert channel.messages == []


@pytest.mark.parametrize(
    ("consents", "reason"),
    [
        (
            [consent(status="withdrawn", withdrawn_at=T0 - timedelta(days=1))],
            "consent for offers is withdrawn",
        ),
        ([consent(expires_at=T0 - timedelta(days=1))], "consent for offers has expired"),
        ([consent(channel="phone")], "no consent for offers on email"),
        ([consent(status="denied")], "consent for offers is denied"),
        ([consent(purpose="newsletter")], "no consent for offers on email"),
        ([], "no consent for offers on email"),
        (  # a later refusal stops what an earlier grant allowed
            [consent(captured_at=T0 - timedelta(days=10)), consent(status="denied", captured_at=T0 - timedelta(days=5))],
            "consent for offers is denied",
        ),
    ],
)
def test_without_valid_consent_at_send_time_the_offer_is_skipped_with_the_reason(consents, reason):
    channel = RecordingChannel()
    result = engine_for(cross_sell(), consents, channel).handle(bought(), record=ADA, now=T0)
    (step,) = result.traces[0].steps
    assert (step.outcome, step.detail) == ("skipped", reason)
    assert channel.messages == []


def test_a_consent_for_every_channel_allows_the_message():
    assert consent_problem([consent(channel=None)], "offers", "email", T0) is None


def test_without_a_consent_source_marketing_is_never_sent():
    channel = RecordingChannel()
    engine = WorkflowEngine([cross_sell()], services=Services(channels={"email": channel}))
    (step,) = engine.handle(bought(), record=ADA, now=T0).traces[0].steps
    assert step.outcome == "skipped"
    assert "no consent source" in step.detail


def test_the_frequency_cap_limits_offers_per_person_and_period():
    channel = RecordingChannel()
    engine = engine_for(cross_sell(cap_count=2, cap_period="P7D"), [consent()], channel)
    outcomes = []
    for days in (0, 1, 2, 8):
        moment = T0 + timedelta(days=days)
        (step,) = engine.handle(bought(at=moment), record=ADA, now=moment).traces[0].steps
        outcomes.append(step.outcome)
    assert outcomes == ["done", "done", "skipped", "done"]
    assert len(channel.messages) == 3


def test_a_question_about_interest_rates_gets_a_rate_offer_for_the_contact_who_asked():
    channel = RecordingChannel()
    flow = Workflow.from_json(
        {
            "name": "rate-retention",
            "entity": "activity",
            "trigger": {"type": "activity_logged", "activity_kind": "email"},
            "conditions": {
                "all": [
                    {"field": "direction", "op": "eq", "value": "inbound"},
                    {"field": "subject", "op": "matches", "value": "(?i)interest rate"},
                ]
            },
            "steps": [
                {
                    "action": "send_message",
                    "params": {
                        "channel": "email",
                        "to": "contact_id",
                        "purpose": "offers",
                        "subject": "Re: {subject}",
                        "body": "Dear {recipient.first_name}, we can offer you 3.1% fixed.",
                    },
                }
            ],
        }
    )
    people = {ADA.id: ADA}
    engine = WorkflowEngine(
        [flow],
        services=Services(
            channels={"email": channel},
            consents=lambda ref: [consent()] if ref == EntityRef.to(ADA) else [],
            loader=lambda ref: people.get(ref.id),
        ),
    )
    question = Activity(
        activity_type="email",
        direction="inbound",
        subject="What interest rate do you pay?",
        contact_id=ADA.id,
        created_at=T0,
    )
    result = engine.handle(EntityCreated(entity=EntityRef.to(question), at=T0), record=question, now=T0)
    assert result.traces[0].status is RunStatus.COMPLETED
    (message,) = channel.messages
    assert message.subject == "Re: What interest rate do you pay?"
    assert message.body == "Dear Ada, we can offer you 3.1% fixed."
    assert message.address == "ada@example.com"
