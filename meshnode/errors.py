"""Errors raised by the service layer; ``meshnode/web/errors.py`` maps each to one HTTP status.

Invalid input has one class and one name, ``meshnode.protocol.errors.ValidationError``
(422 with per-field messages), whether a member's form or a peer's document was wrong: the
pure parsers raise it and the use cases raise the same class, imported from there.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CommunityUnreachableError",
    "ConflictError",
    "IdempotencyKeyReusedError",
    "LimitExceededError",
    "NotFoundError",
    "OutcomeLostError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestInFlightError",
    "ServiceError",
    "UnsupportedMediaError",
]


class ServiceError(Exception):
    """Base class of use-case errors; ``code`` is the machine-readable error name."""

    code = "error"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class NotFoundError(ServiceError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"


class ConflictError(ServiceError):
    """The request conflicts with existing state (duplicate username, invalid transition)."""

    code = "conflict"


class LimitExceededError(ConflictError):
    """A transfer would take an account past its lower or upper limit (REFERENCE.md §6).

    A conflict with the current state rather than bad input: the same request succeeds once
    the balance has moved, hence 409 (a ConflictError), not 422. ``available`` is the room
    left, in minor units; ``side`` says whose room ran out: the payer's ("spend") or the
    payee's ("receive").
    """

    code = "limit_exceeded"

    def __init__(self, message: str, *, available: int, fields: dict[str, str] | None = None,
                 side: str = "spend", account: str = ""):
        super().__init__(message, fields)
        self.available = available
        self.side = side
        self.account = account


class AuthenticationError(ServiceError):
    """Missing, invalid or revoked credentials, or a disabled member."""

    code = "unauthorized"


class PermissionDeniedError(ServiceError):
    """Authenticated, but not allowed to do this (editing someone else's listing)."""

    code = "forbidden"


class PayloadTooLargeError(ServiceError):
    """A body, an image or a count exceeds its documented cap."""

    code = "payload_too_large"


class UnsupportedMediaError(ServiceError):
    """An upload is not an accepted image type."""

    code = "unsupported_media_type"


class RateLimitedError(ServiceError):
    """Too many attempts (e.g. failed logins) in a short time; try again later."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BusyError(ServiceError):
    """The node is shedding load (e.g. its inbox backlog is full); retry after a while."""

    code = "busy"

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeyReusedError(ServiceError):
    """An ``Idempotency-Key`` already used for a different request (method, path or body)."""

    code = "idempotency_key_reused"


class RequestInFlightError(ConflictError):
    """A request with the same ``Idempotency-Key`` is still running; retry after a moment."""

    code = "request_in_progress"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeLostError(ConflictError):
    """The request with this ``Idempotency-Key`` was carried out, but the node stopped before
    it could record the answer: look the result up rather than retrying."""

    code = "answer_lost"


class CommunityUnreachableError(ServiceError):
    """A node on the way to the payee does not answer right now: nothing was paid, retry later.

    Not "no trust line": the route may well exist once that neighbour is back (issue 12).
    """

    code = "community_unreachable"

    def __init__(self, message: str, retry_after: int = 60,
                 fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields)
        self.retry_after = retry_after
