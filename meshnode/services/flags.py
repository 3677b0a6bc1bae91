"""Reports across nodes: a member's report of another node's listing leaves as a ``Flag``
(``protocol/flags.py``) through the durable outbox; a Flag another node sends us joins the
moderators' queue; the decision travels back as an Accept (removed) or Reject (dismissed).

The network is reached only through the outbox (``services/publishing.queue_activity``); the
inbox of the listing's node is found by the caller (``federation/flags.py``) and passed in.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.flags import (
    MAX_COMMENT,
    REASONS,
    FlagAnswer,
    ParsedFlag,
    build_flag,
    build_flag_answer,
)
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.publishing import queue_activity
from meshnode.services.signing import community_actor
from meshnode.store import listings as listing_q
from meshnode.store import reports as q
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.store.reports import NewReport, ReportRow

# One report per member and listing per day (a second one within it is refused).
REPORT_AGAIN_AFTER = timedelta(days=1)
InboxOf = Callable[[ListingRow], Awaitable[str]]


def check_input(reason: object, comment: object, anonymous: object) -> tuple[str, str, bool]:
    """The API's ``{reason, comment, anonymous}``: a known reason, at most 1,000 characters
    of plain text (``other`` needs one), a boolean. ValidationError names each bad field."""
    fields: dict[str, str] = {}
    if reason not in REASONS:
        fields["reason"] = Text("one of %(reasons)s", reasons=", ".join(REASONS))
    text = clean_text(comment) if isinstance(comment, str) else ""
    if comment is not None and not isinstance(comment, str):
        fields["comment"] = Text("text")
    elif len(text) > MAX_COMMENT:
        fields["comment"] = Text("at most %(max)s characters", max=MAX_COMMENT)
    elif reason == "other" and not text:
        fields["comment"] = Text("say briefly what is wrong")
    if not isinstance(anonymous, bool):
        fields["anonymous"] = Text("true or false")
    if fields:
        raise ValidationError(Text("this report cannot be sent"), fields)
    return str(reason), text, bool(anonymous)


async def _refuse_repeat(ctx: NodeContext, reporter: MemberRow, listing: ListingRow) -> None:
    since = format_utc(ctx.clock() - REPORT_AGAIN_AFTER)
    if await q.reported_since(ctx.store.reader, reporter.id, listing.id, since):
        raise ConflictError(Text("you already reported this listing today"))


def _flag_for(ctx: NodeContext, reporter: MemberRow, listing: ListingRow, reason: str,
              comment: str, anonymous: bool) -> dict[str, object]:
    base = ctx.config.base_url
    actor = community_actor(ctx) if anonymous else urls.member_actor(base, reporter.username)
    return build_flag(flag_id=f"{base}/flags/{secrets.token_hex(12)}", actor=actor,
                      objects=[listing.author_uri, listing.object_id], comment=comment,
                      reason=reason, published=format_utc(ctx.clock()))


async def file_report(ctx: NodeContext, reporter: MemberRow, listing_id: str, *,
                      reason: object, comment: object, anonymous: object,
                      inbox_of: InboxOf) -> ReportRow:
    """``POST /api/v1/listings/{id}/reports``: a report on a listing of ours joins our queue;
    one on another node's listing is also sent there as a Flag (anonymous: from the
    community actor, no reporter id). Nothing is stored when anything is refused."""
    reason_code, text, hide_reporter = check_input(reason, comment, anonymous)
    listing = await listing_q.get_listing(ctx.store.reader, listing_id)
    if listing is None:
        raise NotFoundError("no such listing")
    await _refuse_repeat(ctx, reporter, listing)
    inbox = None if listing.is_local else await inbox_of(listing)
    flag = None if inbox is None else _flag_for(ctx, reporter, listing, reason_code, text,
                                                hide_reporter)
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        report_id = await q.insert_report(tx, NewReport(
            listing_id=listing.id, reporter_id=reporter.id, reason=text, created_at=now,
            category=reason_code, anonymous=hide_reporter,
            direction="local" if flag is None else "out",
            flag_id=None if flag is None else str(flag["id"]),
            remote_community=None if flag is None else listing.origin))
        assert report_id is not None  # a fresh random flag id
        if flag is None:
            await notifications.admins(ctx, tx, "report_received", ref=str(report_id),
                                       url="/admin/reports", detail=text or reason_code)
        else:
            await queue_activity(tx, flag, public=False, inboxes=[str(inbox)], now=now)
    found = await q.get_report(ctx.store.reader, report_id)
    assert found is not None  # just written
    return found


async def _object_here(tx: aiosqlite.Connection, ctx: NodeContext,
                       objects: tuple[str, ...]) -> tuple[ListingRow | None, bool]:
    """The listing of ours a Flag names, and whether it names anything we know."""
    member_prefix = urls.member_actor(ctx.config.base_url, "")
    known = False
    for object_id in objects:
        listing = await listing_q.get_listing_by_object_id(tx, object_id)
        if listing is not None and listing.is_local:
            return listing, True
        known = known or object_id.startswith(member_prefix)
    return None, known


async def receive_flag(ctx: NodeContext, tx: aiosqlite.Connection, flag: ParsedFlag, *,
                       from_person: bool, reply_inbox: str) -> str:
    """Queue a Flag from another node for our moderators (once per Flag id); a Flag naming
    nothing we know is still queued, marked ``unknown_object``."""
    listing, known = await _object_here(tx, ctx, flag.objects)
    report_id = await q.insert_report(tx, NewReport(
        listing_id=listing.id if listing else None, reporter_id=None, reason=flag.comment,
        created_at=format_utc(ctx.clock()), category=flag.reason, anonymous=not from_person,
        direction="in", flag_id=flag.id, remote_community=origin_of(flag.actor),
        remote_actor=flag.actor, reply_inbox=reply_inbox,
        objects=json.dumps(list(flag.objects)), unknown_object=not known))
    if report_id is None:
        return "ignored: duplicate Flag"
    await notifications.admins(ctx, tx, "report_received", ref=str(report_id),
                               url="/admin/reports", detail=flag.comment or flag.reason)
    return "queued for moderation" if known else "queued: unknown object"


async def queue_answer(ctx: NodeContext, tx: aiosqlite.Connection, report: ReportRow,
                       decision: str) -> None:
    """Tell the node that sent ``report`` what became of it (nothing for our own)."""
    if report.direction != "in" or report.flag_id is None or report.reply_inbox is None:
        return
    answer = build_flag_answer(
        answer_id=f"{ctx.config.base_url}/flags/answers/{secrets.token_hex(12)}",
        actor=community_actor(ctx), flag_id=report.flag_id, flag_actor=str(report.remote_actor),
        decision=decision)
    await queue_activity(tx, answer, public=False, inboxes=[report.reply_inbox],
                         now=format_utc(ctx.clock()))


async def receive_answer(ctx: NodeContext, tx: aiosqlite.Connection, answer: FlagAnswer,
                         actor: str) -> str:
    """The other node's moderators decided one of our Flags: record it, tell our admins."""
    report = await q.get_by_flag(tx, answer.flag_id)
    if report is None or report.direction != "out":
        return "ignored: not a Flag we sent"
    if report.remote_community != origin_of(actor):
        return "rejected: only the reported node answers its Flag"
    if not await q.resolve(tx, report.id, answer.decision, format_utc(ctx.clock())):
        return "ignored: already answered"
    await notifications.admins(ctx, tx, "report_answered", ref=str(report.id),
                               url="/admin/reports", detail=answer.decision)
    return f"report {answer.decision}"
