"""Why an input record is refused: the reasons of the dead-letter contract, and the error."""

from __future__ import annotations

import enum


class RejectReason(enum.StrEnum):
    """Why an input record went to its dead-letter topic (the `dlq.reason` header)."""

    UNDECODABLE = "undecodable"
    SCHEMA_INVALID = "schema_invalid"
    WRONG_TOPIC = "wrong_topic"
    WRONG_KEY = "wrong_key"
    WRONG_SHARD = "wrong_shard"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNKNOWN_ID = "unknown_id"
    DUPLICATE_EVENT = "duplicate_event"
    INVALID_TRANSITION = "invalid_transition"
    BATCH_TOO_LARGE = "batch_too_large"
    RECORD_TOO_LARGE = "record_too_large"
    TOO_DEEP = "too_deep"
    STRING_TOO_LONG = "string_too_long"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    TOO_MANY_ITEMS = "too_many_items"
    TOO_MANY_EVENTS = "too_many_events"
    INTERNAL_ERROR = "internal_error"


class EventRejected(Exception):
    """An input record is invalid; it belongs in the dead-letter topic with `reason`.

    `exception` names the error behind the rejection in the dead letter's `dlq.exception`
    header: this class's name for a rejection, the unexpected exception's for `internal_error`.
    """

    def __init__(self, reason: RejectReason, message: str, *, exception: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.exception = exception or type(self).__name__


class PartRejected(EventRejected):
    """One element of a batch record is invalid (a fix of a ping batch): only it is refused.

    `index` is its position in the batch and `part` the element as decoded; its dead letter
    carries the element as its value and the index in `dlq.index`.
    """

    def __init__(self, reason: RejectReason, message: str, index: int, part: object) -> None:
        super().__init__(reason, message)
        self.index = index
        self.part = part
