"""The first in line is e-mailed when the item comes back, if they chose mail (a real SMTP
server on 127.0.0.1, the fixtures of ``test_email.py``)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.federation.mail import MailWorker
from meshnode.services import deals
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from tests.conftest import MakeMember
from tests.web.test_email import (  # noqa: F401 - fixtures
    Inbox,
    _body,
    _verified,
    mail_client,
    mail_ctx,
    make_mail_member,
    smtp,
    smtp_port,
    worker,
)
from tests.web.test_queue_api import lent_out


async def test_queue_email__the_first_in_line_is_mailed_in_french_when_the_item_is_back(
    mail_client: TestClient, mail_ctx: NodeContext, worker: MailWorker,  # noqa: F811
    smtp: Inbox, make_mail_member: MakeMember,  # noqa: F811
) -> None:
    alice, bob, carol = [await make_mail_member(name) for name in ("alice", "bob", "carol")]
    listing_id, deal_id = await lent_out(mail_ctx, alice, bob)
    await _verified(mail_client, worker, smtp, carol, "carol@canal.example")
    await queue_service.join(mail_ctx, carol.row, listing_id)
    # When the drill is returned and the queue steps
    await deals.act(mail_ctx, alice.row, deal_id, "complete")
    await queue_service.run_due(mail_ctx)
    assert await worker.step() == 1
    # Then Carol receives one mail naming her turn and linking the listing
    mail = smtp.messages[-1]
    subject = str(mail["Subject"]).replace("\u202f", " ").replace("\u00a0", " ")
    assert subject == (
        "[Les Voisins du Canal] C’est votre tour : l’objet que vous attendiez est revenu")
    assert f"http://127.0.0.1:8080/listings/{listing_id}" in _body(mail)
    assert "Perceuse à percussion" in _body(mail)
