"""Reachability of a remote node from delivery and sync results; errors as sentences."""

from __future__ import annotations

import pytest

from meshnode.protocol.reachability import (
    ERROR_CLASSES,
    UNKNOWN_ERROR,
    explain_error,
    reachability,
)

CONNECT = ("GET http://127.0.0.1:37985/nodeinfo/2.1 failed: ClientConnectorError(ConnectionKey("
           "host='127.0.0.1', port=37985, is_ssl=False, ssl=True, proxy=None), "
           "ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', 37985)\"))")


def _sentence(start: str) -> str:
    return next(sentence for _, sentence in ERROR_CLASSES if sentence.startswith(start))


@pytest.mark.parametrize(("raw", "start"), [
    (CONNECT, "The node could not be reached"),
    ("HTTP 401 clock_skew: Date is 7200 s away", "The node refused our requests because"),
    ("TimeoutError()", "The node did not answer in time"),
    ("HTTP 403 signature refused", "The node refused our signature"),
    ("HTTP 410", "The node no longer knows"),
    ("HTTP 503", "The node had an error"),
    ("sync: ClientSSLError certificate verify failed", "A secure connection"),
])
def test_explain_error__each_class_is_a_sentence_without_the_raw_text(raw: str, start: str
                                                                      ) -> None:
    # Given a raw error as the workers store it / When explained / Then its class's sentence
    sentence = explain_error(raw)
    assert sentence == _sentence(start)
    assert "Error(" not in sentence
    assert "127.0.0.1" not in sentence


def test_explain_error__a_connection_error_repr_with_ssl_fields_is_not_a_tls_failure() -> None:
    # The ConnectionKey repr says "is_ssl=False, ssl=True": that is no TLS problem
    assert explain_error(CONNECT) != _sentence("A secure connection")


def test_explain_error__unknown_text_says_the_log_has_details_and_none_is_none() -> None:
    assert explain_error("KeyError('x')") == UNKNOWN_ERROR
    assert explain_error(None) is None
    assert explain_error("") is None


def test_reachability__failures_after_the_last_success_mean_failing_with_next_retry() -> None:
    # Given deliveries queued after the last success that keep failing
    verdict = reachability(last_delivery="2026-12-01T10:00:00Z", last_sync="2026-12-01T09:00:00Z",
                           failures=3, failing_since="2026-12-01T11:00:00Z",
                           next_retry="2026-12-01T12:00:00Z")
    # Then the node is failing since then, the next retry is known, the last success kept
    assert verdict.state == "failing"
    assert verdict.last_success == "2026-12-01T10:00:00Z"
    assert (verdict.failures, verdict.failing_since) == (3, "2026-12-01T11:00:00Z")
    assert verdict.next_retry == "2026-12-01T12:00:00Z"


def test_reachability__a_success_after_old_failures_means_reachable() -> None:
    verdict = reachability(last_delivery="2026-12-01T12:30:00Z", last_sync=None, failures=1,
                           failing_since="2026-12-01T11:00:00Z",
                           next_retry="2026-12-01T13:00:00Z")
    assert verdict.state == "reachable"
    assert verdict.next_retry is None
    assert verdict.failing_since is None


def test_reachability__never_tried_is_unknown_and_a_failed_peering_is_failing() -> None:
    none = {"last_delivery": None, "last_sync": None, "failures": 0, "failing_since": None,
            "next_retry": None}
    assert reachability(**none).state == "unknown"  # type: ignore[arg-type]
    failed = reachability(**none, peer_error=True)  # type: ignore[arg-type]
    assert (failed.state, failed.failures) == ("failing", 1)


def test_reachability__a_host_that_asked_us_to_wait_is_waiting_until_its_pause_ends() -> None:
    # Given deliveries failing since 11:00 because the host answered 429 with Retry-After
    failing = {"last_delivery": "2026-12-01T10:00:00Z", "last_sync": None, "failures": 2,
               "failing_since": "2026-12-01T11:00:00Z", "next_retry": "2026-12-01T11:01:00Z"}
    verdict = reachability(**failing, paused_until="2026-12-01T11:30:00Z")  # type: ignore[arg-type]
    # Then it is waiting (busy, not failing), next try at the pause's end, failures kept
    assert verdict.state == "waiting"
    assert verdict.next_retry == "2026-12-01T11:30:00Z"
    assert (verdict.failures, verdict.failing_since) == (2, "2026-12-01T11:00:00Z")
    # And without a pause the same deliveries mean failing; a pause never hides a success
    assert reachability(**failing).state == "failing"  # type: ignore[arg-type]
    healthy = {**failing, "last_delivery": "2026-12-01T12:00:00Z"}
    assert reachability(**healthy, paused_until="2026-12-01T12:30:00Z").state == "reachable"  # type: ignore[arg-type]
