"""Slow clients against a real ``meshnode run`` process: timeouts, the connection cap, logs.

Raw sockets on 127.0.0.1 trickle a request head or body, the way a slowloris attack does.
The node runs with short timeouts (``[server] header_timeout``/``body_timeout`` = 1 s) and a
small cap so the tests stay quick; the rules are the same with the defaults.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshnode.web.connections import ThrottledLog
from tests.conftest import make_config
from tests.nodeproc import NodeProcess, free_port

CAP = 16
LIMIT_SECONDS = 15.0  # a generous bound on "closed after the 1 s timeout", not a timing test


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    port = free_port()
    make_config(tmp_path / "node", port=port, header_timeout=1.0, body_timeout=1.0,
                max_connections=CAP)
    process = NodeProcess(tmp_path / "node", port).start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.kill()


def connect(node: NodeProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    sock.settimeout(0.2)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed ``sock`` (EOF or reset); False while it is open."""
    try:
        return sock.recv(4096) == b""  # a 408/503 answer would come first; EOF follows
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def trickle_until_closed(sock: socket.socket, byte: bytes = b"a") -> bool:
    """Send one byte at a time; True if the server closed the connection meanwhile."""
    deadline = time.monotonic() + LIMIT_SECONDS
    while time.monotonic() < deadline:
        try:
            sock.send(byte)
        except OSError:
            return True
        if closed_by_server(sock):
            return True
    return False


def start_head(sock: socket.socket) -> None:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")


def start_body(sock: socket.socket) -> None:
    sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 100000\r\n\r\nusername=")


def healthz(node: NodeProcess) -> int:
    with urllib.request.urlopen(f"{node.url}/healthz", timeout=10) as response:
        return int(response.status)


def test_server__trickled_request_head_is_closed_after_header_timeout(
    node: NodeProcess,
) -> None:
    # Given a client sending its headers one byte at a time
    sock = connect(node)
    start_head(sock)
    # Then the node closes the connection although bytes keep coming
    assert trickle_until_closed(sock)
    sock.close()


def test_server__trickled_request_body_is_closed_after_body_timeout(node: NodeProcess) -> None:
    # Given a complete head announcing 100 kB, then a body trickled one byte at a time
    sock = connect(node)
    start_body(sock)
    # Then the node closes the connection long before the body could complete
    assert trickle_until_closed(sock)
    sock.close()
    # And says so in one line, with no traceback from the handler that was reading
    code, stderr = node.stop()
    assert code == 0
    assert "Traceback" not in stderr
    assert stderr.count("request body did not arrive within 1 s") == 1, stderr


def test_server__idle_connection_that_never_sends_is_closed(node: NodeProcess) -> None:
    sock = connect(node)
    deadline = time.monotonic() + LIMIT_SECONDS
    while time.monotonic() < deadline and not closed_by_server(sock):
        pass
    assert time.monotonic() < deadline
    sock.close()


def test_server__healthz_answers_while_more_slow_connections_than_the_cap_are_open(
    node: NodeProcess,
) -> None:
    # Given three times the cap in slow connections: half trickling heads, half bodies
    slow = []
    for index in range(3 * CAP):
        sock = connect(node)
        (start_head if index % 2 else start_body)(sock)
        slow.append(sock)
    # When a real client asks for /healthz
    # Then it is answered: the oldest slow connections were evicted to make room
    assert healthz(node) == 200
    assert healthz(node) == 200
    evicted = sum(closed_by_server(sock) for sock in slow)
    assert evicted >= 2 * CAP
    for sock in slow:
        sock.close()
    # And the log has one counted line per kind of refusal, not a traceback per connection
    code, stderr = node.stop()
    assert code == 0
    assert "Traceback" not in stderr
    assert "Error handling request" not in stderr
    assert stderr.count("connection cap (16) reached") == 1, stderr


def test_throttled_log__one_line_per_kind_per_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given 1,000 evictions and 10 body timeouts within 70 seconds
    throttled = ThrottledLog(logging.getLogger("test.throttle"), interval=60.0)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for tick in range(1000):
            throttled.note("evicted", "evicted", now=tick * 0.07)
        for tick in range(10):
            throttled.note("body", "body", now=float(tick))
    # Then two lines for evictions (at 0 s and after 60 s, with the count since) and one for
    # body timeouts
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "evicted (1 since the last such line)",
        "evicted (858 since the last such line)",
        "body (1 since the last such line)",
    ]


MALFORMED = (
    b"GET /api/v1/listings?cursor=\xc2\xb2 HTTP/1.1\r\nHost: x\r\n\r\n",  # raw UTF-8 in a query
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",  # a header line without a colon
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to a plain port
)


def test_server__malformed_requests_get_400_and_one_log_line_not_a_traceback_each(
    node: NodeProcess,
) -> None:
    # Given a stranger sending 60 requests the HTTP parser refuses, of four kinds
    answers = []
    for index in range(60):
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
            sock.sendall(MALFORMED[index % len(MALFORMED)])
            answers.append(sock.recv(64))
    # Then each got a 400 (or a closed connection), and the node still serves
    refused = [answer[:12] in (b"HTTP/1.0 400", b"HTTP/1.1 400") for answer in answers]
    assert all(ok or answer == b"" for ok, answer in zip(refused, answers, strict=True))
    assert sum(refused) >= 45
    assert healthz(node) == 200
    # And the log has one counted line for all of them, no traceback
    code, stderr = node.stop()
    assert code == 0
    assert "Traceback" not in stderr, stderr[:2000]
    assert stderr.count("malformed HTTP requests refused with 400") == 1, stderr
