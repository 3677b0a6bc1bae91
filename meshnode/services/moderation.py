"""Reports of inappropriate listings; admins hide or restore them, or decide a report.

Reports about listings of other nodes and reports other nodes send us travel as ``Flag``s
(``services/flags.py``); deciding a report received that way sends the answer back.
"""

from __future__ import annotations

from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.flags import DECISIONS
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import flags, notifications
from meshnode.services.context import NodeContext
from meshnode.services.permissions import require_admin
from meshnode.store import listings as listing_q
from meshnode.store import reports as q
from meshnode.store.members import MemberRow
from meshnode.store.reports import NewReport, ReportRow

MAX_REASON = 1000


async def report_listing(
    ctx: NodeContext, reporter: MemberRow, listing_id: str, reason: str
) -> int:
    """A member reports a listing to the community's administrators (the page's form)."""
    text = clean_text(reason)
    if not 3 <= len(text) <= MAX_REASON:
        raise ValidationError(
            "say briefly what is wrong", {"reason": Text("3 to %(max)s characters", max=MAX_REASON)}
        )
    if await listing_q.get_listing(ctx.store.reader, listing_id) is None:
        raise NotFoundError("no such listing")
    async with ctx.store.transaction() as tx:
        report_id = await q.insert_report(tx, NewReport(
            listing_id=listing_id, reporter_id=reporter.id, reason=text,
            created_at=format_utc(ctx.clock())))
        assert report_id is not None  # no flag id: nothing to ignore
        await notifications.admins(ctx, tx, "report_received", ref=str(report_id),
                                   url="/admin/reports", detail=text)
        return report_id


async def list_reports(ctx: NodeContext, *, open_only: bool = True) -> list[ReportRow]:
    """Reports for the admin page and ``GET /api/v1/reports``."""
    return await q.list_reports(ctx.store.reader, open_only=open_only)


async def set_listing_hidden(
    ctx: NodeContext, admin: MemberRow, listing_id: str, *, hidden: bool
) -> None:
    """Hide (or restore) a listing and close its open reports; the nodes that reported it
    are told (hidden: removed, restored: dismissed)."""
    require_admin(admin, "only administrators can moderate")
    if await listing_q.get_listing(ctx.store.reader, listing_id) is None:
        raise NotFoundError("no such listing")
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        received = await q.open_received_for_listing(tx, listing_id)
        await listing_q.set_hidden(tx, listing_id, hidden)
        await q.resolve_for_listing(tx, listing_id, "hidden" if hidden else "restored", now)
        for report in received:
            await flags.queue_answer(ctx, tx, report, "removed" if hidden else "dismissed")


async def decide_report(ctx: NodeContext, admin: MemberRow, report_id: int,
                        decision: str) -> ReportRow:
    """An admin decides one report: ``removed`` hides a listing of ours it names (the
    content goes), ``dismissed`` keeps it. A report received from another node is answered
    (Accept / Reject of its Flag)."""
    require_admin(admin, "only administrators can moderate")
    if decision not in DECISIONS:
        raise ValidationError(Text("unknown decision"),
                              {"decision": Text("removed or dismissed")})
    report = await q.get_report(ctx.store.reader, report_id)
    if report is None:
        raise NotFoundError("no such report")
    if report.direction == "out":
        raise ConflictError(Text("this report was sent to another community: its moderators"
                                 " decide"))
    async with ctx.store.transaction() as tx:
        if not await q.resolve(tx, report.id, decision, format_utc(ctx.clock())):
            raise ConflictError(Text("this report was already decided"))
        if decision == "removed" and report.listing_id is not None:
            await listing_q.set_hidden(tx, report.listing_id, True)
        await flags.queue_answer(ctx, tx, report, decision)
    found = await q.get_report(ctx.store.reader, report.id)
    assert found is not None  # just written
    return found
