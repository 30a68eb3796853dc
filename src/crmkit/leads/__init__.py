"""The lead engine: capture, duplicate matching and merge, scoring, routing and conversion.

Every function here is pure: values in, new values and domain events out. Nothing is stored; a host
saves what it gets back in one store transaction. Definitions (routing rules, scoring models, match
rules, conversion mappings) are immutable values that round-trip through JSON and are validated when
they are built.

* Capture: :func:`capture_lead`, :func:`capture_batch` (with :class:`Utm` and :class:`ConsentCapture`).
* Duplicates: :class:`MatchIndex` and :class:`MatchRule`; :func:`merge_records` with a
  :class:`MergePolicy`, :func:`undo_merge`; :func:`screen_duplicates` merges, flags or rejects.
* Scoring: :class:`ScoringModel` compiled by a :class:`Scorer` into :class:`ScoreCard` values;
  :func:`apply_score`; :class:`PredictiveModel` for naive-Bayes predictions.
* Routing: :class:`RoutingRules` run by a :class:`Router` (or :func:`route_lead`) into
  :class:`RoutingDecision` values; turns and quotas in a :class:`RoutingState` such as ``tx.state``;
  :func:`fairness_report`, :func:`open_work`.
* Conversion: :func:`convert_lead` with a :class:`ConversionMapping`.
"""

from crmkit.leads._capture import (
    FREE_MAIL_DOMAINS,
    CapturedLead,
    CaptureReport,
    ConsentCapture,
    RejectedCapture,
    Utm,
    capture_batch,
    capture_lead,
)
from crmkit.leads._convert import Conversion, ConversionMapping, convert_lead
from crmkit.leads._dedupe import (
    DEFAULT_RULES,
    MATCH_KEYS,
    DuplicateMatch,
    MatchIndex,
    MatchRule,
    Merged,
    MergePolicy,
    MergeRecord,
    MergeResult,
    OnDuplicate,
    Survivorship,
    UndoResult,
    Unmerged,
    merge_records,
    screen_duplicates,
    undo_merge,
)
from crmkit.leads._predictive import Factor, Prediction, PredictiveModel
from crmkit.leads._routing import (
    Absence,
    Assign,
    CandidateNote,
    Directory,
    FairnessReport,
    FairnessRow,
    Period,
    Router,
    RoutingDecision,
    RoutingRule,
    RoutingRules,
    Strategy,
    fairness_report,
    open_work,
    route_lead,
)
from crmkit.leads._scoring import (
    Decay,
    DecayKind,
    Dimension,
    MqlThresholds,
    ScoreCard,
    ScoredLead,
    ScoreLine,
    Scorer,
    ScoreRule,
    ScoringModel,
    apply_score,
    score_lead,
)
from crmkit.leads._state import MemoryRoutingState, RoutingState, StateRecord

__all__ = [
    "DEFAULT_RULES",
    "FREE_MAIL_DOMAINS",
    "MATCH_KEYS",
    "Absence",
    "Assign",
    "CandidateNote",
    "CaptureReport",
    "CapturedLead",
    "ConsentCapture",
    "Conversion",
    "ConversionMapping",
    "Decay",
    "DecayKind",
    "Dimension",
    "Directory",
    "DuplicateMatch",
    "Factor",
    "FairnessReport",
    "FairnessRow",
    "MatchIndex",
    "MatchRule",
    "MemoryRoutingState",
    "MergePolicy",
    "MergeRecord",
    "MergeResult",
    "Merged",
    "MqlThresholds",
    "OnDuplicate",
    "Period",
    "Prediction",
    "PredictiveModel",
    "RejectedCapture",
    "Router",
    "RoutingDecision",
    "RoutingRule",
    "RoutingRules",
    "RoutingState",
    "ScoreCard",
    "ScoreLine",
    "ScoreRule",
    "ScoredLead",
    "Scorer",
    "ScoringModel",
    "StateRecord",
    "Strategy",
    "Survivorship",
    "UndoResult",
    "Unmerged",
    "Utm",
    "apply_score",
    "capture_batch",
    "capture_lead",
    "convert_lead",
    "fairness_report",
    "merge_records",
    "open_work",
    "route_lead",
    "score_lead",
    "screen_duplicates",
    "undo_merge",
]
