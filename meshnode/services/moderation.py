"""Reports of inappropriate listings; admins hide or restore them."""

from __future__ import annotations

from meshnode.errors import NotFoundError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.permissions import require_admin
from meshnode.store import listings as listing_q
from meshnode.store import reports as q
from meshnode.store.members import MemberRow
from meshnode.store.reports import ReportRow

MAX_REASON = 1000


async def report_listing(
    ctx: NodeContext, reporter: MemberRow, listing_id: str, reason: str
) -> int:
    """A member reports a listing to the community's administrators."""
    text = clean_text(reason)
    if not 3 <= len(text) <= MAX_REASON:
        raise ValidationError(
            "say briefly what is wrong", {"reason": Text("3 to %(max)s characters", max=MAX_REASON)}
        )
    if await listing_q.get_listing(ctx.store.reader, listing_id) is None:
        raise NotFoundError("no such listing")
    async with ctx.store.transaction() as tx:
        report_id = await q.insert_report(
            tx, listing_id=listing_id, reporter_id=reporter.id, reason=text,
            created_at=format_utc(ctx.clock()),
        )
        await notifications.admins(ctx, tx, "report_received", ref=str(report_id),
                                   url="/admin/reports", detail=text)
        return report_id


async def list_reports(ctx: NodeContext, *, open_only: bool = True) -> list[ReportRow]:
    """Reports for the admin page."""
    return await q.list_reports(ctx.store.reader, open_only=open_only)


async def set_listing_hidden(
    ctx: NodeContext, admin: MemberRow, listing_id: str, *, hidden: bool
) -> None:
    """Hide (or restore) a listing and close its open reports."""
    require_admin(admin, "only administrators can moderate")
    if await listing_q.get_listing(ctx.store.reader, listing_id) is None:
        raise NotFoundError("no such listing")
    async with ctx.store.transaction() as tx:
        await listing_q.set_hidden(tx, listing_id, hidden)
        await q.resolve_for_listing(
            tx, listing_id, "hidden" if hidden else "restored", format_utc(ctx.clock())
        )
