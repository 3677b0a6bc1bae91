"""The one place that maps typed errors to HTTP statuses and JSON error bodies.

Error body: ``{"error": code, "message": human text, "fields": {field: message}}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from meshnode import errors as service_errors
from meshnode.protocol import deals
from meshnode.protocol import errors as protocol_errors
from meshnode.protocol.listings import UnknownCategoryError
from meshnode.protocol.translatable import message_of
from meshnode.services.storage import is_storage_full
from meshnode.store import StorageFullError, StorageHealth

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HtmlErrorRenderer = Callable[[web.Request, int, str], Awaitable[web.StreamResponse]]
# Set by the HTML pages (web/pages): error pages for browsers instead of JSON bodies.
HTML_ERRORS = web.AppKey[HtmlErrorRenderer]("html_errors")

# Most specific first: the first isinstance match wins.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (UnknownCategoryError, 400),
    (protocol_errors.MalformedJSONError, 400),
    (protocol_errors.ClockSkewError, 401),
    (protocol_errors.SignatureError, 401),
    (deals.NotYourMoveError, 403),
    (deals.TransitionError, 409),
    (deals.CapacityError, 409),
    (protocol_errors.ValidationError, 422),
    (protocol_errors.KeyFormatError, 400),
    (protocol_errors.ProtocolError, 400),
    (service_errors.IdempotencyKeyReusedError, 422),
    (service_errors.NotFoundError, 404),
    # 409, not 422: the amount is valid, it only conflicts with the balance right now.
    (service_errors.LimitExceededError, 409),
    (service_errors.ConflictError, 409),
    (service_errors.AuthenticationError, 401),
    (service_errors.PermissionDeniedError, 403),
    (service_errors.PayloadTooLargeError, 413),
    (service_errors.UnsupportedMediaError, 415),
    (service_errors.RateLimitedError, 429),
    (service_errors.BusyError, 503),
    (service_errors.CommunityUnreachableError, 503),
    # RFC 4918 §11.5: the server cannot store what the request needs; retry once space returns.
    (StorageFullError, 507),
)

HANDLED_ERRORS = (protocol_errors.ProtocolError, service_errors.ServiceError, StorageFullError)
# Set by create_app: the store's health, to log a full disk once a minute, not per request.
STORAGE_HEALTH = web.AppKey("storage_health", StorageHealth)


def status_for(error: Exception) -> int:
    """HTTP status for a typed error (500 for anything unmapped)."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> web.Response:
    """A JSON error response in the API's documented shape."""
    response = web.json_response(
        {"error": code, "message": message, "fields": fields or {}}, status=status
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="meshnode"'
    return response


def with_retry_after(response: web.StreamResponse, error: Exception) -> web.StreamResponse:
    """Add ``Retry-After`` for errors that carry one: 409 (request in progress), 429, 503 and
    507 (RFC 9110 §10.2.3)."""
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


def response_for(error: Exception) -> web.Response:
    """Translate a typed error into its JSON response."""
    fields = getattr(error, "fields", None)
    code = getattr(error, "code", "error")
    response = error_response(status_for(error), code, str(error), fields)
    with_retry_after(response, error)
    return response


def _is_api(request: web.Request) -> bool:
    """JSON errors for the API and every machine client; HTML pages only for browsers,
    which always list ``text/html`` in ``Accept`` (peers, curl and scripts do not)."""
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or "text/html" not in accept


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn typed errors (and aiohttp's own 4xx) into JSON error bodies, or pages for browsers."""
    html = None if _is_api(request) else request.app.get(HTML_ERRORS)
    try:
        return await handler(request)
    except OSError as error:  # a file write (an image upload) on a full disk
        if not is_storage_full(error):
            raise
        health = request.app.get(STORAGE_HEALTH)
        if health is not None:
            health.record_failure(str(error))
        return await _answer(request, html, StorageFullError(str(error)))
    except HANDLED_ERRORS as error:
        return await _answer(request, html, error)
    except web.HTTPException as exc:
        if exc.status >= 400 and html is not None:
            return await html(request, exc.status, exc.reason)
        if exc.status >= 400 and _is_api(request):
            return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise


async def _answer(
    request: web.Request, html: HtmlErrorRenderer | None, error: Exception
) -> web.StreamResponse:
    """The error page for a browser, else the JSON error (with ``Retry-After`` if known)."""
    if isinstance(error, StorageFullError):
        _log_storage_full(request, error)
    if html is None:
        return response_for(error)
    page = await html(request, status_for(error), message_of(error))
    return with_retry_after(page, error)


def _log_storage_full(request: web.Request, error: StorageFullError) -> None:
    """One log line per minute while the disk is full, not a traceback per request."""
    health = request.app.get(STORAGE_HEALTH)
    if health is None:
        log.error("storage full: %s", error.detail)
        return
    if health.log_due(time.monotonic()):
        log.error("storage full: %d write(s) refused since the last report (last: %s %s: %s)",
                  health.take_unlogged(), request.method, request.path, error.detail)
