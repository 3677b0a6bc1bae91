"""The mail worker: sends the outbox's mails through the community's SMTP server.

Standard library only (``smtplib`` run in a thread, ``ssl`` default context: the server's
certificate and name are checked). The text of each mail comes from a renderer the app
passes in (the web layer's catalogues), so this module knows no language. Failures are
retried with the delivery backoff (protocol/retry.py); a 5xx reply (other than an
authentication one, see protocol/mail.py) gives the mail up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from meshnode.config import EmailConfig
from meshnode.federation.delivery import LOOP_ERRORS
from meshnode.federation.state import CONTEXT
from meshnode.federation.tasks import cancel_and_wait
from meshnode.protocol.mail import mail_retry_delay, one_line
from meshnode.services import email
from meshnode.services.context import NodeContext
from meshnode.services.email import MailText
from meshnode.store.email import MailRow
from meshnode.store.notifications import NotificationRow

if TYPE_CHECKING:
    import smtplib

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 30.0
MAIL_POLL = 10.0
Renderer = Callable[[MailRow, Sequence[NotificationRow]], MailText]


class SendFailure(Exception):
    """The SMTP server refused the mail, or could not be reached (``code`` None)."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(f"{code or 'no reply'}: {detail}")
        self.code = code


class SmtpSender:
    """Sends one message per connection (mail volume is small; no idle connection kept)."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    async def send(self, message: bytes, *, sender: str, to: str) -> None:
        """Hand ``message`` to the server (SendFailure on any refusal or network error)."""
        await asyncio.to_thread(self._send, message, sender, to)

    def _send(self, message: bytes, sender: str, to: str) -> None:
        import smtplib  # here: a node without [email] never sends (issue 17: memory)

        try:
            with self._connect() as client:
                if self.config.user:
                    client.login(self.config.user, self.config.password)
                client.sendmail(sender, [to], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()), (None, b""))
            raise SendFailure(code, answer.decode("utf-8", "replace")) from exc
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise SendFailure(exc.smtp_code, text) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailure(None, str(exc) or type(exc).__name__) from exc

    def _connect(self) -> smtplib.SMTP:
        import smtplib

        config = self.config
        if config.security == "tls":
            return smtplib.SMTP_SSL(config.host, config.port, timeout=SMTP_TIMEOUT,
                                    context=ssl.create_default_context())
        client = smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT)
        if config.security == "starttls":
            try:
                client.starttls(context=ssl.create_default_context())
            except BaseException:
                client.close()
                raise
        return client


def build_message(*, sender: str, to: str, subject: str, body: str, when: datetime,
                  message_id: str, list_unsubscribe: str | None = None) -> bytes:
    """A plain-text UTF-8 message ready for SMTP (CRLF line ends; RFC 2047 encoded words
    for a French subject)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    if list_unsubscribe:
        message["List-Unsubscribe"] = f"<{one_line(list_unsubscribe, 500)}>"
    message.set_content(body, charset="utf-8")
    return message.as_bytes()



class MailWorker:
    """Queues the daily digests that are due, then sends due mails; ``step()`` for tests."""

    def __init__(self, ctx: NodeContext, config: EmailConfig, render: Renderer, *,
                 sender: SmtpSender | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        self.ctx = ctx
        self.config = config
        self.render = render
        self.sender = sender or SmtpSender(config)
        self.jitter = jitter
        self.domain = urlsplit(ctx.config.base_url).hostname or "meshnode.invalid"

    async def step(self) -> int:
        """One pass; returns digests queued plus mails tried."""
        done = await email.queue_digests(self.ctx)
        for mail in await email.due_mails(self.ctx):
            await self._send_one(mail)
            done += 1
        return done

    async def _send_one(self, mail: MailRow) -> None:
        items = await email.mail_items(self.ctx, mail)
        if mail.kind != "verify" and not items:
            await email.record_sent(self.ctx, mail)  # every item is gone: nothing to say
            return
        text = self.render(mail, items)
        message = build_message(
            sender=self.config.from_address, to=mail.address, subject=text.subject,
            body=text.body, when=self.ctx.clock(), message_id=make_msgid(domain=self.domain),
            list_unsubscribe=f"{self.ctx.config.base_url}/notifications")
        try:
            await self.sender.send(message, sender=self.config.from_address, to=mail.address)
        except SendFailure as exc:
            delay = mail_retry_delay(mail.attempts + 1, exc.code, self.jitter())
            log.warning("mail %s to member %s: %s (%s)", mail.id, mail.member_id, exc,
                        "retrying" if delay is not None else "given up")
            await email.record_failure(self.ctx, mail, error=str(exc), delay=delay)
            return
        await email.record_sent(self.ctx, mail)


MAIL_WORKER = web.AppKey("mail_worker", MailWorker)


async def _run(worker: MailWorker) -> None:
    while True:
        try:
            busy = await worker.step()
        except LOOP_ERRORS:
            log.exception("mail worker")
            busy = 0
        await asyncio.sleep(0 if busy else MAIL_POLL)


def mail_context(render: Callable[[web.Application], Renderer], *, run_workers: bool
                 ) -> Callable[[web.Application], AsyncIterator[None]]:
    """The ``cleanup_ctx`` entry: a mail worker when ``[email]`` is configured, else nothing."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        ctx = app[CONTEXT]
        task: asyncio.Task[None] | None = None
        if ctx.config.email is not None:
            worker = MailWorker(ctx, ctx.config.email, render(app))
            app[MAIL_WORKER] = worker
            if run_workers:
                task = asyncio.create_task(_run(worker))
        try:
            yield
        finally:
            await cancel_and_wait([task], what="mail worker")

    return context
