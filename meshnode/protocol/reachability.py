"""Whether a remote node answers, told from delivery and sync results; errors as sentences.

Pure: the caller passes the stored results (ISO 8601 UTC strings compare in time order) and
the raw error texts; nothing here reads the clock. The raw text of an error (an exception's
``repr``, a status line) is for the server log only: pages show the sentence of its class
from :data:`ERROR_CLASSES`, translated.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshnode.protocol.translatable import N_

__all__ = ["ERROR_CLASSES", "UNKNOWN_ERROR", "Reachability", "explain_error", "reachability"]

# (lower-case markers found in the raw text, the sentence shown); the first match wins.
ERROR_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("clock_skew", "clock skew", "clocks is probably wrong"),
     N_("The node refused our requests because the two servers' clocks differ.")),
    (("timeout", "timed out"), N_("The node did not answer in time.")),
    (("name or service not known", "nodename nor servname", "temporary failure in name",
      "getaddrinfo"), N_("The node's address could not be found (DNS).")),
    (("connectionrefused", "connect call failed", "clientconnectorerror", "cannot connect",
      "connection reset", "serverdisconnected", "clientoserror", "network is unreachable"),
     N_("The node could not be reached: its server is off or its address changed.")),
    (("sslerror", "certificateerror", "certificate verify", "ssl:", "tlsv1"),
     N_("A secure connection to the node could not be made.")),
    (("not allowed", "private address", "urlguard", "blocked address"),
     N_("This node's address is not allowed by this server's network rules.")),
    ((" 401", " 403", "signature"), N_("The node refused our signature.")),
    ((" 404", " 410"), N_("The node no longer knows this address.")),
    ((" 429",), N_("The node asked us to slow down; deliveries will resume.")),
    ((" 500", " 502", " 503", " 504"), N_("The node had an error of its own.")),
    (("json", "invalid", "unexpected"), N_("The node answered with something we could not read.")),
)
UNKNOWN_ERROR = N_("Deliveries to this node failed (the details are in the server log).")


def explain_error(raw: str | None) -> str | None:
    """The sentence (an untranslated catalogue id) for a stored error text, ``None`` for none."""
    if not raw:
        return None
    text = " " + raw.lower()
    for markers, sentence in ERROR_CLASSES:
        if any(marker in text for marker in markers):
            return sentence
    return UNKNOWN_ERROR


@dataclass(frozen=True)
class Reachability:
    """What the admin reads about one node: is it answering, since when not, next try."""

    state: str  # "reachable", "failing", "waiting" (it asked us to wait) or "unknown"
    last_success: str | None
    failures: int
    failing_since: str | None
    next_retry: str | None


def reachability(*, last_delivery: str | None, last_sync: str | None, failures: int,
                 failing_since: str | None, next_retry: str | None,
                 peer_error: bool = False, paused_until: str | None = None) -> Reachability:
    """Combine delivery and sync results: failing while attempts fail since the last success.

    ``failures`` counts deliveries still retrying (or given up) after an error;
    ``failing_since`` is when the oldest of them was queued. ``peer_error`` is a failed
    peering step (follow, key or sync): with no success ever, the node is failing too.
    ``paused_until``: the host answered 429 or 503 and we wait until then (RFC 9110 §10.2.3
    Retry-After): it is answering, busy, so "waiting" rather than "failing", next try then.
    """
    successes = [when for when in (last_delivery, last_sync) if when]
    last_success = max(successes) if successes else None
    if peer_error and last_success is None:
        failures = max(failures, 1)
    if failures and (last_success is None or failing_since is None
                     or last_success <= failing_since):
        state = "failing"
    elif last_success is not None:
        state = "reachable"
    else:
        state = "unknown"
    if state == "failing" and paused_until:
        state, next_retry = "waiting", paused_until
    troubled = state in ("failing", "waiting")
    return Reachability(state=state, last_success=last_success, failures=failures,
                        failing_since=failing_since if troubled else None,
                        next_retry=next_retry if troubled else None)
