"""Ledger memos as sentences for plain text (e-mails); pages use ``templates/_memo.html``.

The ledger writes ``deal <id>: <title>``, ``refund, deal <id>: <title>`` and
``deposit claimed: <reason>``; a member reads "Réservation 1a2b3c4d… : Perceuse".
"""

from __future__ import annotations

from meshnode.protocol.names import parse_deal_memo
from meshnode.web.i18n import Translator

DEPOSIT_CLAIMED = "deposit claimed"


def memo_sentence(tr: Translator, memo: str) -> str:
    """``memo`` in the reader's language when it is one the ledger wrote, else unchanged."""
    deal = parse_deal_memo(memo)
    if deal is not None:
        what = tr.gettext("Refund of booking" if deal.prefix.startswith("refund")
                          else "Booking")
        title = deal.rest[1:].strip()
        return f"{what} {deal.deal_id[:8]}…" + (f"{tr.colon} {title}" if title else "")
    if memo == DEPOSIT_CLAIMED or memo.startswith(DEPOSIT_CLAIMED + ": "):
        reason = memo[len(DEPOSIT_CLAIMED) + 2:]
        kept = tr.gettext("Deposit kept by the author")
        return f"{kept}{tr.colon} {reason}" if reason else kept
    return memo
