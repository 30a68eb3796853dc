"""Every segmentation definition is data: JSON round trips, and any JSON is either read or a RuleError."""

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import RuleError
from crmkit.segmentation import AffinitySegment, Arm, FrequencyCap, SegmentMap, SegmentRule, Split

labels = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
score_ranges = st.tuples(st.integers(1, 5), st.integers(1, 5)).map(lambda pair: tuple(sorted(pair)))
rules = st.builds(SegmentRule, labels, score_ranges, score_ranges, score_ranges)
segment_maps = st.builds(
    SegmentMap, st.lists(rules, min_size=1, max_size=6, unique_by=lambda rule: rule.name), labels
)
splits = st.builds(
    Split,
    st.lists(
        st.builds(Arm, labels.filter(lambda name: name != "holdout"), st.integers(1, 100)),
        min_size=1,
        max_size=4,
        unique_by=lambda arm: arm.name,
    ),
    st.sampled_from([0.0, 0.05, 0.1, 0.5]),
)
affinities = st.builds(
    AffinitySegment,
    labels,
    labels,
    st.sampled_from([0.5, 0.8, 1.0]),
    st.sampled_from(["orders", "spend"]),
    st.sampled_from(["P12M", "P90D", "P1Y"]),
    st.integers(1, 10),
)
caps = st.builds(FrequencyCap, st.integers(1, 20), st.sampled_from(["P1D", "P7D", "PT12H"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 8) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(segment_maps)
def test_segment_maps_round_trip_through_json_text(segment_map):
    assert SegmentMap.from_json(json.dumps(segment_map.to_json())) == segment_map


@settings(max_examples=60, deadline=None)
@given(splits, affinities, caps)
def test_splits_affinity_segments_and_caps_round_trip(split, affinity, cap):
    assert Split.from_json(json.loads(json.dumps(split.to_json()))) == split
    assert AffinitySegment.from_json(json.dumps(affinity.to_json())) == affinity
    assert FrequencyCap.from_json(json.loads(json.dumps(cap.to_json()))) == cap


@settings(max_examples=150, deadline=None)
@given(json_values, json_values)
def test_any_json_is_read_or_refused_with_a_rule_error(rules_value, other):
    for reader, data in (
        (SegmentMap.from_json, {"rules": rules_value, "default": other}),
        (SegmentMap.from_json, {"rules": [{"name": "x", "recency": rules_value}]}),
        (Split.from_json, {"arms": rules_value, "holdout": other}),
        (AffinitySegment.from_json, {"name": "x", "category": other, "min_share": rules_value}),
        (FrequencyCap.from_json, {"max_messages": rules_value, "window": other}),
    ):
        with contextlib.suppress(RuleError):
            reader(data)
