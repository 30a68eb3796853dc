"""Audiences: consent, unsubscribes, erasure, suppression and caps; deterministic splits with a holdout."""

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock, use_clock
from crmkit.entities import Channel, Consent, ConsentStatus, EntityRef
from crmkit.errors import RuleError, ValidationError
from crmkit.segmentation import (
    HOLDOUT,
    Arm,
    Audience,
    Exclusion,
    FrequencyCap,
    Split,
    bucket,
    build_audience,
    consent_problem,
)

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def consent(
    who, *, status=ConsentStatus.GRANTED, channel=Channel.EMAIL, purpose="newsletter", days_ago=30, **kw
):
    captured = NOW - timedelta(days=days_ago)
    if status is ConsentStatus.WITHDRAWN and "withdrawn_at" not in kw:
        kw["withdrawn_at"] = captured + timedelta(days=1)
    return Consent(
        subject=EntityRef("contact", who),
        purpose=purpose,
        channel=channel,
        status=status,
        captured_at=captured,
        **kw,
    )


CONSENTS = [
    consent("ok"),
    consent("any_channel", channel=None),
    consent("sms_only", channel=Channel.PHONE),
    consent("other_purpose", purpose="surveys"),
    consent("withdrew", status=ConsentStatus.WITHDRAWN),
    consent("denied", status=ConsentStatus.DENIED),
    consent("expired", expires_at=NOW - timedelta(days=1)),
    consent("regranted", status=ConsentStatus.WITHDRAWN, days_ago=60),
    consent("regranted", days_ago=10),
    consent("future", days_ago=-1),
    consent("unsub"),
    consent("gone"),
    consent("blocked"),
    consent("busy"),
    consent("dnc"),
]


def test_an_audience_is_the_segment_less_everyone_who_may_not_be_contacted():
    members = [
        "ok", "any_channel", "sms_only", "other_purpose", "withdrew", "denied", "expired", "regranted",
        "future", "nobody", "unsub", "gone", "blocked", "busy", "dnc",
    ]  # fmt: skip
    sent = [("busy", NOW - timedelta(days=d)) for d in (1, 2, 3)] + [("ok", NOW - timedelta(days=20))]
    audience = build_audience(
        members,
        channel="email",
        purpose="newsletter",
        consents=CONSENTS,
        unsubscribed={"unsub"},
        erased={"gone"},
        suppressed={"blocked"},
        do_not_contact={"dnc"},
        sent=sent,
        cap=FrequencyCap(3, "P7D"),
        at=NOW,
    )
    assert audience.included == ("any_channel", "ok", "regranted")
    assert audience.excluded == {
        "sms_only": Exclusion.NO_CONSENT,
        "other_purpose": Exclusion.NO_CONSENT,
        "withdrew": Exclusion.CONSENT_WITHDRAWN,
        "denied": Exclusion.CONSENT_DENIED,
        "expired": Exclusion.CONSENT_EXPIRED,
        "future": Exclusion.NO_CONSENT,
        "nobody": Exclusion.NO_CONSENT,
        "unsub": Exclusion.UNSUBSCRIBED,
        "gone": Exclusion.ERASED,
        "blocked": Exclusion.SUPPRESSED,
        "busy": Exclusion.FREQUENCY_CAP,
        "dnc": Exclusion.DO_NOT_CONTACT,
    }
    assert audience.exclusion_counts()[Exclusion.NO_CONSENT] == 4


def test_a_withdrawal_after_the_send_time_does_not_count_yet():
    later = consent("x", status=ConsentStatus.WITHDRAWN, withdrawn_at=NOW + timedelta(days=1))
    assert consent_problem([later], channel=Channel.EMAIL, purpose="newsletter", at=NOW) is None


def test_the_audience_is_built_at_the_clock_time_by_default():
    with use_clock(FixedClock(NOW - timedelta(days=45))):
        audience = build_audience(["ok"], channel=Channel.EMAIL, purpose="newsletter", consents=CONSENTS)
    assert audience == Audience((), {"ok": Exclusion.NO_CONSENT})  # not captured yet then


def test_bad_audience_arguments_are_validation_errors():
    with pytest.raises(ValidationError) as caught:
        build_audience([], channel="pigeon", purpose="x", consents=[])
    assert caught.value.paths == ("channel",)
    with pytest.raises(ValidationError) as caught:
        build_audience([], channel="email", purpose="x", consents=[], at=datetime(2026, 1, 1))  # noqa: DTZ001
    assert caught.value.paths == ("at",)


def test_a_frequency_cap_is_data_that_round_trips_and_is_validated():
    cap = FrequencyCap(2, "P14D")
    assert FrequencyCap.from_json(json.loads(json.dumps(cap.to_json()))) == cap
    assert cap.reached([NOW - timedelta(days=1), NOW - timedelta(days=13)], NOW)
    assert not cap.reached([NOW - timedelta(days=1), NOW - timedelta(days=15)], NOW)
    for bad, path in (
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": 1, "window": "weekly"}, "window"),
    ):
        with pytest.raises(RuleError) as caught:
            FrequencyCap.from_json(bad)
        assert caught.value.path == path
    with pytest.raises(RuleError):
        FrequencyCap.from_json({})


# -- splits ------------------------------------------------------------------------------------------


def test_the_bucket_is_sha256_of_campaign_and_customer_and_fixed_forever():
    # Pinned values: a change here would reshuffle every running test.
    assert bucket("cust-1", "spring-sale") == 0.6722598288716923
    assert bucket("cust-2", "spring-sale") != bucket("cust-2", "summer-sale")


def test_the_split_is_the_same_in_another_process():
    code = "from crmkit.segmentation import bucket; print(repr(bucket('cust-1', 'spring-sale')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert float(out) == bucket("cust-1", "spring-sale")


def test_a_split_assigns_holdout_then_arms_by_weight():
    split = Split([Arm("A"), Arm("B", 3)], holdout=0.1)
    assignment = split.assign_all([f"c{i}" for i in range(20_000)], "campaign-1")
    counts = Counter(assignment.values())
    assert set(counts) == {"A", "B", HOLDOUT}
    assert counts[HOLDOUT] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts["A"] / 20_000 == pytest.approx(0.225, abs=0.015)
    assert counts["B"] / 20_000 == pytest.approx(0.675, abs=0.015)


def test_a_split_round_trips_through_json():
    split = Split([{"name": "A", "weight": 1}, {"name": "B", "weight": 2}], holdout=0.05)
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"arms": []}, "arms"),
        ({"arms": [{"name": "A"}, {"name": "A"}]}, "arms[1].name"),
        ({"arms": [{"name": "holdout"}]}, "arms[0].name"),
        ({"arms": [{"name": "A", "weight": 0}]}, "arms[0].weight"),
        ({"arms": [{"name": "A", "colour": 1}]}, "arms[0]"),
        ({"arms": [{"name": "A"}], "holdout": 1}, "holdout"),
        ({"arms": "AB"}, "arms"),
        ({}, ""),
    ],
)
def test_a_bad_split_is_a_rule_error_with_the_path(data, path):
    with pytest.raises(RuleError) as caught:
        Split.from_json(data)
    assert caught.value.path == path


customer_ids = st.text(min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(customer_ids, customer_ids, st.floats(0, 0.9))
def test_assignment_is_stable_and_in_the_unit_interval(customer, campaign, holdout):
    split = Split([Arm("A"), Arm("B")], holdout=holdout)
    assert split.assign(customer, campaign) == split.assign(customer, campaign)
    assert 0 <= bucket(customer, campaign) < 1


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    st.sampled_from([0.0, 0.1, 0.25]),
    st.text(min_size=1, max_size=8),
)
def test_assignment_is_near_the_requested_split(weights, holdout, campaign):
    split = Split([Arm(f"arm{i}", w) for i, w in enumerate(weights)], holdout=holdout)
    n = 4_000
    counts = Counter(split.assign(f"customer-{i}", campaign) for i in range(n))
    total = sum(weights)
    expected = {f"arm{i}": (1 - holdout) * w / total for i, w in enumerate(weights)} | {HOLDOUT: holdout}
    for name, share in expected.items():
        # Five standard deviations of a binomial share: a false alarm about once in 3 million.
        tolerance = 5 * (share * (1 - share) / n) ** 0.5 + 1e-9
        assert abs(counts.get(name, 0) / n - share) <= tolerance
