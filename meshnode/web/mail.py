"""The text of the mails the mail worker sends, in each member's language.

Plain text (no HTML, so nothing from a listing or a message can become markup); the same
sentences as the notification page (``LABELS``); every mail links to the preferences.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from aiohttp import web

from meshnode.protocol.amounts import format_amount
from meshnode.services.email import MailText
from meshnode.store.email import MailRow
from meshnode.store.notifications import NotificationRow
from meshnode.web.appkeys import CONFIG, I18N
from meshnode.web.i18n import N_, Translator
from meshnode.web.memos import memo_sentence

LABELS = {
    "booking_requested": N_("Someone asked to book your listing"),
    "booking_accepted": N_("Your booking was accepted"),
    "booking_declined": N_("Your booking was declined"),
    "booking_cancelled": N_("A booking was cancelled"),
    "payment_received": N_("You received a payment"),
    "payment_request": N_("A payment request waits for your approval"),
    "message": N_("New message"),
    "pledge": N_("New pledge on your group buy"),
    "group_buy_reached": N_("Group buy reached its goal"),
    "group_buy_failed": N_("Group buy did not reach its goal"),
    "listing_expiring": N_("Your listing expires soon"),
    "trustline_proposed": N_("A community proposes a trust line"),
    "report_received": N_("A listing was reported"),
    "queue_turn": N_("Your turn: the item you waited for is back"),
    "report_answered": N_("Another community decided a report sent to it"),
    "match": N_("A listing matches your search or your listing"),
}
# Errors of services/email.py and protocol/mail.py a page or the API can show.
EMAIL_MESSAGES = (
    N_("this community does not send e-mail"), N_("add an e-mail address first"),
    N_("a verification mail was sent a few minutes ago; check your inbox or wait"),
    N_("this verification link is unknown or expired"), N_("not an e-mail address"),
    N_("address must be text"), N_("an e-mail address"),
)


def _item_lines(tr: Translator, item: NotificationRow, base_url: str, decimals: int) -> str:
    head = tr.gettext(LABELS.get(item.type, item.type))
    parts = [tr.amount(format_amount(item.amount, decimals=decimals))] if (
        item.amount is not None) else []
    if item.detail:
        parts.append(memo_sentence(tr, item.detail))
    line = f"• {head}" + (f" — {' · '.join(parts)}" if parts else "")
    return line + (f"\n  {base_url}{item.target_url}" if item.target_url else "")


def render_mail(tr: Translator, mail: MailRow, items: Sequence[NotificationRow], *,
                community: str, base_url: str, decimals: int) -> MailText:
    """Subject and body of one mail (verification, one notification, or a digest)."""
    if mail.kind == "verify":
        link = str(json.loads(mail.payload)["link"])
        return MailText(
            subject=tr.gettext("Confirm your e-mail address for %(community)s",
                               community=community),
            body=tr.gettext("Hello,\n\nTo receive the notifications of %(community)s by "
                            "e-mail, open this link within 48 hours:\n\n%(link)s\n\nIf you "
                            "did not ask for this, ignore this mail: nothing will be sent.\n",
                            community=community, link=link))
    lines = "\n\n".join(_item_lines(tr, item, base_url, decimals) for item in items)
    subject = (tr.gettext(LABELS.get(items[0].type, items[0].type)) if len(items) == 1
               else tr.ngettext("%(count)s notification", "%(count)s notifications",
                                len(items)))
    footer = tr.gettext("Choose what you receive: %(link)s",
                        link=f"{base_url}/notifications#preferences")
    return MailText(subject=f"[{community}] {subject}", body=f"{lines}\n\n-- \n{footer}\n")


def renderer_for(app: web.Application
                 ) -> Callable[[MailRow, Sequence[NotificationRow]], MailText]:
    """The renderer the mail worker calls, bound to this app's catalogues and config."""
    config = app[CONFIG]

    def render(mail: MailRow, items: Sequence[NotificationRow]) -> MailText:
        tr = app[I18N].choose(mail.locale, "")
        return render_mail(tr, mail, items, community=config.name, base_url=config.base_url,
                           decimals=config.currency.decimals)

    return render
