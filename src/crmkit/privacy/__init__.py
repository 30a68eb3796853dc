"""Privacy and trust: consent, export, erasure, suppression and retention.

* Consent: :func:`grant_consent` and :func:`withdraw_consent` make the
  :class:`~crmkit.entities.Consent` records; a :class:`ConsentLedger` answers
  ``allows(person, channel, purpose, at)`` with a :class:`ConsentDecision` that says why, refuses
  with :class:`~crmkit.errors.ConsentError` in :meth:`ConsentLedger.require`, splits recipients with
  :meth:`ConsentLedger.screen`, and gives the state at any time and the history.
* Personal data: fields are marked on the entities (:func:`personal_fields`); the host declares its
  personal custom fields in :class:`PersonalData`.
* Export: :func:`export_person` returns everything stored about a person as one JSON document.
* Erasure: :func:`erase_person` empties personal fields across every record of the person, rewrites
  them out of the audit log, withdraws consents and puts salted hashes of the emails and phones on the
  suppression list, in the caller's transaction; :func:`screen_lead` and :func:`screen_leads` check
  new leads against it and :func:`suppressed_among` finds the suppressed among an audience.
* Retention: :class:`RetentionPolicy` values run by :func:`apply_retention` (a dry run by default).

Store-facing functions take an open store transaction (``store.transaction()``), through the
:class:`PrivacyTransaction` port; nothing here imports the storage package.
"""

from crmkit.privacy._consent import (
    ConsentChange,
    ConsentDecision,
    ConsentLedger,
    ConsentReason,
    Person,
    Purpose,
    Screening,
    grant_consent,
    withdraw_consent,
)
from crmkit.privacy._erase import (
    ERASED_NAMESPACE,
    ErasureReport,
    PersonErased,
    anonymise,
    erase_person,
    erased_ids,
)
from crmkit.privacy._export import EXPORT_FORMAT, export_person
from crmkit.privacy._personal import ANY_KIND, PLACEHOLDER, PersonalData, personal_fields
from crmkit.privacy._ports import PrivacyTransaction, StatePort
from crmkit.privacy._records import (
    LOOKUP_INDEXES,
    IndexedStore,
    PersonRecords,
    add_lookup_indexes,
    find_person,
)
from crmkit.privacy._retention import RetentionAction, RetentionOutcome, RetentionPolicy, apply_retention
from crmkit.privacy._suppression import (
    SUPPRESSION_NAMESPACE,
    LeadScreening,
    OnSuppressed,
    SuppressionMatch,
    screen_lead,
    screen_leads,
    suppress,
    suppressed_among,
    suppression_match,
)

__all__ = [
    "ANY_KIND",
    "ERASED_NAMESPACE",
    "EXPORT_FORMAT",
    "LOOKUP_INDEXES",
    "PLACEHOLDER",
    "SUPPRESSION_NAMESPACE",
    "ConsentChange",
    "ConsentDecision",
    "ConsentLedger",
    "ConsentReason",
    "ErasureReport",
    "IndexedStore",
    "LeadScreening",
    "OnSuppressed",
    "Person",
    "PersonErased",
    "PersonRecords",
    "PersonalData",
    "PrivacyTransaction",
    "Purpose",
    "RetentionAction",
    "RetentionOutcome",
    "RetentionPolicy",
    "Screening",
    "StatePort",
    "SuppressionMatch",
    "add_lookup_indexes",
    "anonymise",
    "apply_retention",
    "erase_person",
    "erased_ids",
    "export_person",
    "find_person",
    "grant_consent",
    "personal_fields",
    "screen_lead",
    "screen_leads",
    "suppress",
    "suppressed_among",
    "suppression_match",
    "withdraw_consent",
]
