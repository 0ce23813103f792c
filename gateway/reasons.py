"""Every reason code the gateway emits: one per decision, one per invalid record.

Reason codes are data: they drive the metrics, the audit records, the DLQ and `gateway explain`.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a record was forwarded, dropped, or rejected as invalid."""

    # forward
    CONSENTED = "consented"
    CONSENTED_NO_IDENTIFIERS = "consented_no_identifiers"
    CONSENTED_CHILD_NO_IDENTIFIERS = "consented_child_no_identifiers"
    # drop (valid event, not for this sink)
    EVENT_KIND_NOT_ACCEPTED = "event_kind_not_accepted"
    EVENT_TYPE_NOT_ACCEPTED = "event_type_not_accepted"
    CHILD_BARRED_SINK = "child_barred_sink"
    CHILD_NO_PARENTAL_CONSENT = "child_no_parental_consent"
    GPC = "gpc"
    DNT = "dnt"
    CONSENT_DENIED = "consent_denied"
    CONSENT_UNKNOWN = "consent_unknown"
    # invalid input (DLQ)
    MISSING_VALUE = "missing_value"
    MISSING_KEY = "missing_key"
    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    TOO_DEEP = "too_deep"
    DUPLICATE_KEY = "duplicate_key"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_FIELD = "invalid_field"
    BAD_TIMESTAMP = "bad_timestamp"
    KEY_MISMATCH = "key_mismatch"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # valid JSON the JSON layer cannot carry exactly
    INTERNAL_ERROR = "internal_error"  # deciding this one record failed; the batch goes on


FORWARD_REASONS = frozenset(
    {Reason.CONSENTED, Reason.CONSENTED_NO_IDENTIFIERS, Reason.CONSENTED_CHILD_NO_IDENTIFIERS}
)
DROP_REASONS = frozenset(
    {
        Reason.EVENT_KIND_NOT_ACCEPTED,
        Reason.EVENT_TYPE_NOT_ACCEPTED,
        Reason.CHILD_BARRED_SINK,
        Reason.CHILD_NO_PARENTAL_CONSENT,
        Reason.GPC,
        Reason.DNT,
        Reason.CONSENT_DENIED,
        Reason.CONSENT_UNKNOWN,
    }
)
INVALID_REASONS = frozenset(set(Reason) - FORWARD_REASONS - DROP_REASONS)
