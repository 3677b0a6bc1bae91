"""E-mail notifications against a real SMTP server on 127.0.0.1 (aiosmtpd): an address is
verified by a link before anything else is sent, mails are localised, a digest goes once a
day, an unreachable server is retried with backoff, a refusal is final, and a node without
``[email]`` sends nothing and fails nothing."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from meshnode.app import create_app
from meshnode.config import EmailConfig
from meshnode.federation.mail import MAIL_WORKER, MailWorker
from meshnode.services import deals, listings
from meshnode.services.context import NodeContext
from meshnode.store import email as email_q
from meshnode.web.appkeys import CONTEXT
from tests.conftest import FakeClock, MakeMember, TestMember, make_config, ride_listing

FROM = "voisins@canal.example"


@dataclass
class Inbox:
    """What the SMTP server received; ``refuse`` makes it answer RCPT with that reply."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.original_content,
                                          policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_port() -> int:
    return _free_port()


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
async def mail_client(aiohttp_client, tmp_path: Path, clock: FakeClock,  # type: ignore[no-untyped-def]
                      smtp_port: int) -> TestClient:
    config = make_config(tmp_path / "node", email=EmailConfig(
        host="127.0.0.1", port=smtp_port, security="none", from_address=FROM, digest_hour=7))
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
def mail_ctx(mail_client: TestClient) -> NodeContext:
    return mail_client.app[CONTEXT]


@pytest.fixture
def worker(mail_client: TestClient) -> MailWorker:
    found = mail_client.app[MAIL_WORKER]
    found.jitter = lambda: 0.0
    return found


@pytest.fixture
async def people(mail_ctx: NodeContext, make_mail_member: MakeMember
                 ) -> tuple[TestMember, TestMember]:
    return await make_mail_member("alice"), await make_mail_member("bob")


@pytest.fixture
def make_mail_member(mail_ctx: NodeContext) -> MakeMember:
    from meshnode.services import members

    async def factory(username: str, *, admin: bool = False) -> TestMember:
        row = await members.add_member(mail_ctx, username=username, password="x" * 12,
                                       is_admin=admin)
        token = await members.create_token(mail_ctx, username)
        return TestMember(row=row, token=token.secret)

    return factory


def _body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


async def _verified(client: TestClient, worker: MailWorker, smtp: Inbox, who: TestMember,
                    address: str) -> None:
    saved = await client.put("/api/v1/notifications/email", json={"address": address},
                             headers=who.headers)
    assert saved.status == 200, await saved.text()
    await worker.step()
    link = re.search(r"http://127\.0\.0\.1:8080(/email/verify/\S+)", _body(smtp.messages[-1]))
    assert link is not None
    opened = await client.get(link.group(1), headers={"Accept": "text/html"})
    assert opened.status == 200


async def _outbox(ctx: NodeContext) -> dict[str, int]:
    return await email_q.outbox_counts(ctx.store.reader)


async def test_email__address_is_verified_by_a_link_before_anything_else_is_sent(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    alice, bob = people
    listing = await listings.create_listing(mail_ctx, alice.row, ride_listing())
    # Given alice gave an address but has not opened the link yet
    saved = await mail_client.put("/api/v1/notifications/email",
                                  json={"address": "Alice@Canal.Example"}, headers=alice.headers)
    assert await saved.json() == {"available": True, "address": "Alice@canal.example",
                                  "verified": False, "enabled": True, "digest": False}
    # When bob books, Then only the verification mail leaves, in French, from the community
    await deals.book(mail_ctx, bob.row, listing.row.id, {"quantity": 1})
    assert await worker.step() == 1
    [verify] = smtp.messages
    assert smtp.envelopes == [(FROM, ["Alice@canal.example"])]
    assert verify["Subject"] == "Confirmez votre adresse e-mail pour Les Voisins du Canal"
    assert verify["Auto-Submitted"] == "auto-generated"
    assert "ouvrez ce lien dans les 48 heures" in _body(verify)
    link = re.search(r"http://127\.0\.0\.1:8080(/email/verify/\S+)", _body(verify))
    assert link is not None
    # the secret is not kept once sent, and only its hash is stored
    async with mail_ctx.store.reader.execute("SELECT payload FROM email_outbox") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == [""]
    row = await email_q.get_email(mail_ctx.store.reader, alice.row.id)
    assert row is not None
    assert row.token_hash is not None
    assert link.group(1).rsplit("/", 1)[1] not in row.token_hash
    # When alice opens the link, Then the next booking is mailed to her at once
    page = await mail_client.get(link.group(1), headers={"Accept": "text/html"})
    assert "Adresse e-mail confirmée" in await page.text()
    deal = await deals.book(mail_ctx, bob.row, listing.row.id, {"quantity": 1})
    assert await worker.step() == 1
    booked = smtp.messages[-1]
    assert booked["Subject"] == "[Les Voisins du Canal] Quelqu’un demande à réserver votre annonce"
    assert f"http://127.0.0.1:8080/deals/{deal.id}" in _body(booked)
    assert "Covoiturage vers Lyon" in _body(booked)
    assert "http://127.0.0.1:8080/notifications#preferences" in _body(booked)
    assert booked["List-Unsubscribe"] == "<http://127.0.0.1:8080/notifications>"
    assert len(smtp.messages) == 2  # the first booking, before verification, was not mailed
    # the link works once
    again = await mail_client.get(link.group(1), headers={"Accept": "application/json"})
    assert again.status == 404


async def test_email__english_member_gets_english_and_amounts_in_their_format(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    from meshnode.services import accounts, ledger
    alice, bob = people
    await accounts.update_profile(mail_ctx, bob.row, display_name="bob", bio="", locale="en")
    await _verified(mail_client, worker, smtp, bob, "bob@canal.example")
    await ledger.pay(mail_ctx, alice.row, payee="bob", amount="234.5", memo="vélo <b>")
    await worker.step()
    paid = smtp.messages[-1]
    assert paid["Subject"] == "[Les Voisins du Canal] You received a payment"
    assert "234.50\u00a0G · vélo <b>" in _body(paid)
    assert paid.get_content_type() == "text/plain"


async def test_email__digest_sends_one_summary_a_day_from_the_digest_hour(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], clock: FakeClock,
) -> None:
    alice, bob = people
    listing = await listings.create_listing(mail_ctx, alice.row, ride_listing())
    await _verified(mail_client, worker, smtp, alice, "alice@canal.example")
    chosen = await mail_client.put("/api/v1/notifications/email", json={"digest": True},
                                   headers=alice.headers)
    assert (await chosen.json())["digest"] is True
    sent_before = len(smtp.messages)
    # Given it is 11:00 in Paris on 26 Nov (digest_hour 7): today's digest is due now
    for _ in range(3):
        await deals.book(mail_ctx, bob.row, listing.row.id, {"quantity": 1})
    assert await worker.step() == 2  # one digest queued, one mail sent
    digest = smtp.messages[-1]
    assert len(smtp.messages) == sent_before + 1
    assert digest["Subject"] == "[Les Voisins du Canal] 3 notifications"
    assert _body(digest).count("Quelqu’un demande à réserver votre annonce") == 3
    # When more happens the same day, Then nothing until tomorrow's digest hour
    await deals.book(mail_ctx, bob.row, listing.row.id, {"quantity": 1})
    assert await worker.step() == 0
    clock.advance(hours=14)  # 01:00 next day in Paris: before the digest hour
    assert await worker.step() == 0
    clock.advance(hours=6)  # 07:00
    assert await worker.step() == 2
    assert smtp.messages[-1]["Subject"] == (
        "[Les Voisins du Canal] Quelqu’un demande à réserver votre annonce")
    assert len(smtp.messages) == sent_before + 2


async def test_email__unreachable_server_is_retried_with_backoff_then_sent(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker,
    people: tuple[TestMember, TestMember], clock: FakeClock, smtp_port: int,
) -> None:
    alice, _ = people
    # Given no SMTP server listens yet
    await mail_client.put("/api/v1/notifications/email", json={"address": "a@canal.example"},
                          headers=alice.headers)
    assert await worker.step() == 1
    async with mail_ctx.store.reader.execute(
            "SELECT state, attempts, next_attempt_at, last_error FROM email_outbox") as cursor:
        state, attempts, retry_at, error = await cursor.fetchone()  # type: ignore[misc]
    assert (state, attempts, retry_at) == ("pending", 1, "2026-11-26T10:00:16Z")  # 1⁴+15 s
    assert "no reply" in error
    assert await worker.step() == 0  # not due yet
    # When the server is up and the retry time comes, Then the mail leaves once
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        clock.advance(seconds=16)
        assert await worker.step() == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert await _outbox(mail_ctx) == {"sent": 1}


async def test_email__permanent_refusal_is_not_retried(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], clock: FakeClock,
) -> None:
    alice, _ = people
    smtp.refuse = "550 5.1.1 no such mailbox"
    await mail_client.put("/api/v1/notifications/email", json={"address": "x@canal.example"},
                          headers=alice.headers)
    await worker.step()
    assert await _outbox(mail_ctx) == {"failed": 1}
    clock.advance(days=3)
    assert await worker.step() == 0
    assert smtp.messages == []


async def test_email__temporary_refusal_is_retried(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], clock: FakeClock,
) -> None:
    alice, _ = people
    smtp.refuse = "451 4.3.0 try later"
    await mail_client.put("/api/v1/notifications/email", json={"address": "x@canal.example"},
                          headers=alice.headers)
    await worker.step()
    assert await _outbox(mail_ctx) == {"pending": 1}
    smtp.refuse = None
    clock.advance(seconds=16)
    await worker.step()
    assert await _outbox(mail_ctx) == {"sent": 1}
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("address", [
    "not-an-address", "a@b.c\r\nBcc: victim@example.org", "a b@canal.example", "@canal.example",
    "a@", "a@-canal.example", "a@canal..example", "é@canal.example", 42, None, "x" * 250 + "@a.b",
])
async def test_email__bad_address_is_422_and_nothing_is_stored_or_sent(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], address: object,
) -> None:
    alice, _ = people
    response = await mail_client.put("/api/v1/notifications/email", json={"address": address},
                                     headers=alice.headers)
    assert response.status == 422
    assert set(await response.json()) == {"error", "message", "fields"}
    assert await email_q.get_email(mail_ctx.store.reader, alice.row.id) is None
    assert await worker.step() == 0
    assert smtp.messages == []


@pytest.mark.parametrize("body", [{"enabled": "yes"}, {"digest": 1}, {"cc": "x@y.z"}, []])
async def test_email__bad_choices_are_422(
    mail_client: TestClient, people: tuple[TestMember, TestMember], body: object,
) -> None:
    alice, _ = people
    response = await mail_client.put("/api/v1/notifications/email", json=body,
                                     headers=alice.headers)
    assert response.status == 422


async def test_email__asking_again_within_ten_minutes_is_refused(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], clock: FakeClock,
) -> None:
    # A member cannot turn the node into a mail cannon aimed at someone else's address
    alice, _ = people
    first = await mail_client.put("/api/v1/notifications/email",
                                  json={"address": "v@canal.example"}, headers=alice.headers)
    assert first.status == 200
    again = await mail_client.put("/api/v1/notifications/email",
                                  json={"address": "w@canal.example"}, headers=alice.headers)
    assert again.status == 409
    clock.advance(minutes=11)
    later = await mail_client.put("/api/v1/notifications/email",
                                  json={"address": "w@canal.example"}, headers=alice.headers)
    assert later.status == 200
    await worker.step()
    assert [to for _, [to] in smtp.envelopes] == ["v@canal.example", "w@canal.example"]


async def test_email__link_expires_after_48_hours_and_unknown_links_are_404(
    mail_client: TestClient, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember], clock: FakeClock,
) -> None:
    alice, _ = people
    await mail_client.put("/api/v1/notifications/email", json={"address": "a@canal.example"},
                          headers=alice.headers)
    await worker.step()
    link = re.search(r"http://127\.0\.0\.1:8080(/email/verify/\S+)", _body(smtp.messages[0]))
    assert link is not None
    for path in ("/email/verify/" + "A" * 43, "/email/verify/short"):
        assert (await mail_client.get(path)).status == 404
    clock.advance(hours=48, seconds=1)
    assert (await mail_client.get(link.group(1))).status == 404
    shown = await mail_client.get("/api/v1/notifications/email", headers=alice.headers)
    assert (await shown.json())["verified"] is False


async def test_email__turning_mail_off_or_removing_the_address_stops_mails(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    from meshnode.services import ledger
    alice, bob = people
    await _verified(mail_client, worker, smtp, alice, "alice@canal.example")
    await mail_client.put("/api/v1/notifications/email", json={"enabled": False},
                          headers=alice.headers)
    await ledger.pay(mail_ctx, bob.row, payee="alice", amount="1")
    assert await worker.step() == 0
    await mail_client.put("/api/v1/notifications/email", json={"enabled": True},
                          headers=alice.headers)
    removed = await mail_client.delete("/api/v1/notifications/email", headers=alice.headers)
    assert (await removed.json())["address"] is None
    await ledger.pay(mail_ctx, bob.row, payee="alice", amount="1")
    assert await worker.step() == 0
    assert len(smtp.messages) == 1  # the verification only


async def test_email__without_an_email_section_nothing_is_queued_and_nothing_fails(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    assert MAIL_WORKER not in client.app
    shown = await client.get("/api/v1/notifications/email", headers=alice.headers)
    assert (await shown.json())["available"] is False
    refused = await client.put("/api/v1/notifications/email", json={"address": "a@b.example"},
                               headers=alice.headers)
    assert refused.status == 409
    listing = await listings.create_listing(ctx, alice.row, ride_listing())
    await deals.book(ctx, bob.row, listing.row.id, {"quantity": 1})
    assert await email_q.outbox_counts(ctx.store.reader) == {}
    page = await client.get("/notifications", headers={"Accept": "text/html"})
    assert page.status == 200  # (a visitor is sent to log in; nothing crashes)


async def test_email__page_form_sets_address_in_french(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    from tests.web.pages.conftest import csrf_of, login
    alice, _ = people
    await login(mail_client, "alice", "x" * 12)
    fr = {"Accept": "text/html", "Accept-Language": "fr"}
    token = await csrf_of(mail_client, "/notifications")
    bad = await mail_client.post("/notifications/email", headers=fr, allow_redirects=False,
                                 data={"csrf": token, "address": "pas une adresse"})
    assert bad.headers["Location"] == "/notifications?email_error=address#email"
    page = await (await mail_client.get(bad.headers["Location"], headers=fr)).text()
    assert "ce n’est pas une adresse e-mail" in page
    good = await mail_client.post("/notifications/email", headers=fr, allow_redirects=False,
                                  data={"csrf": token, "address": "alice@canal.example",
                                        "enabled": "1", "digest": "1"})
    assert good.headers["Location"] == "/notifications?saved=email#email"
    page = await (await mail_client.get("/notifications", headers=fr)).text()
    assert "Nous avons envoyé un lien à alice@canal.example" in page
    settings = json.loads(await (await mail_client.get(
        "/api/v1/notifications/email", headers=alice.headers)).text())
    assert (settings["digest"], settings["verified"]) == (True, False)
    await worker.step()
    assert len(smtp.messages) == 1


async def test_email__a_disabled_member_is_mailed_nothing(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker, smtp: Inbox,
    people: tuple[TestMember, TestMember],
) -> None:
    from meshnode.services import members, notifications
    _, bob = people
    await _verified(mail_client, worker, smtp, bob, "bob@canal.example")
    await members.set_disabled(mail_ctx, "bob", disabled=True)
    async with mail_ctx.store.transaction() as tx:  # e.g. a payment already under way
        assert await notifications.notify(mail_ctx, tx, bob.row.id, "payment_received")
    assert await worker.step() == 0
    assert len(smtp.messages) == 1  # the verification only
