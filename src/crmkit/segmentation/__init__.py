"""Segmentation and campaigns: the right offer to the right customers, and what it earned.

- RFM: :func:`rfm_scores` (recency, frequency, monetary value, tenure, scored 1-5 like SQL's
  ``NTILE(5)``) and named segments from a :class:`SegmentMap`; :func:`btyd_summary`, the input of
  probabilistic lifetime models, as ``lifetimes`` computes it; :func:`rfm_scores_in_store`, the
  same scores computed by the store (one SQL query) from its orders, through an :class:`RfmSource`.
- Cohorts: :func:`cohort_retention`, the cohort retention matrix.
- Rule segments: :class:`RuleSegment` (the condition language, in memory or run by a store through a
  :class:`SegmentSource`), :class:`Snapshot` and :func:`diff_snapshots`.
- Affinity: :func:`category_shares` and :class:`AffinitySegment` ("mostly vegetarian").
- Audiences: :func:`build_audience` (consent, unsubscribes, erasure, suppression, frequency caps) and a
  deterministic :class:`Split` into arms and a holdout.
- Campaigns: :func:`campaign_results` with :func:`two_proportion_z_test`, and :func:`attribute_revenue`.
- Next best offer: :func:`co_purchases` and :func:`recommend`.

Inputs are iterables of :class:`OrderRow` / :class:`LineRow` named tuples (read as they are, fast) or of
:class:`~crmkit.entities.Order` entities (converted once by :func:`order_rows` / :func:`line_rows`).
"""

from crmkit.segmentation._affinity import AffinitySegment, Measure, category_shares
from crmkit.segmentation._audiences import (
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
from crmkit.segmentation._btyd import BtydSummary, btyd_summary
from crmkit.segmentation._campaigns import (
    Attribution,
    AttributionModel,
    CampaignMember,
    CampaignResults,
    Response,
    ResponseKind,
    Touch,
    VariantResult,
    ZTest,
    attribute_revenue,
    campaign_results,
    two_proportion_z_test,
)
from crmkit.segmentation._cohorts import CohortMatrix, Period, cohort_retention, period_label
from crmkit.segmentation._in_store import RfmRow, RfmSource, rfm_scores_in_store
from crmkit.segmentation._offers import CoPurchases, Offer, Similarity, co_purchases, recommend
from crmkit.segmentation._rfm import (
    DEFAULT_SEGMENT_MAP,
    RfmScore,
    SegmentMap,
    SegmentRule,
    ntile,
    rfm_scores,
    rfm_segments,
)
from crmkit.segmentation._rows import COUNTED_STATUSES, LineRow, OrderRow, line_rows, order_rows
from crmkit.segmentation._rules import RuleSegment, SegmentSource, Snapshot, SnapshotDiff, diff_snapshots

__all__ = [
    "COUNTED_STATUSES",
    "DEFAULT_SEGMENT_MAP",
    "HOLDOUT",
    "AffinitySegment",
    "Arm",
    "Attribution",
    "AttributionModel",
    "Audience",
    "BtydSummary",
    "CampaignMember",
    "CampaignResults",
    "CoPurchases",
    "CohortMatrix",
    "Exclusion",
    "FrequencyCap",
    "LineRow",
    "Measure",
    "Offer",
    "OrderRow",
    "Period",
    "Response",
    "ResponseKind",
    "RfmRow",
    "RfmScore",
    "RfmSource",
    "RuleSegment",
    "SegmentMap",
    "SegmentRule",
    "SegmentSource",
    "Similarity",
    "Snapshot",
    "SnapshotDiff",
    "Split",
    "Touch",
    "VariantResult",
    "ZTest",
    "attribute_revenue",
    "btyd_summary",
    "bucket",
    "build_audience",
    "campaign_results",
    "category_shares",
    "co_purchases",
    "cohort_retention",
    "consent_problem",
    "diff_snapshots",
    "line_rows",
    "ntile",
    "order_rows",
    "period_label",
    "recommend",
    "rfm_scores",
    "rfm_scores_in_store",
    "rfm_segments",
    "two_proportion_z_test",
]
