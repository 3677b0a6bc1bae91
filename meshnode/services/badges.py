"""What the navigation counts on every member page: unread messages and notifications."""

from __future__ import annotations

from dataclasses import dataclass

from meshnode.services.context import NodeContext
from meshnode.services.notifications import BADGE_CAP
from meshnode.store import badges as q
from meshnode.store.members import MemberRow


@dataclass(frozen=True)
class Badges:
    """Unread messages (local and from other nodes) and notifications (up to ``BADGE_CAP``)."""

    messages: int
    notifications: int


async def navigation_badges(ctx: NodeContext, member: MemberRow) -> Badges:
    """Both counts in one read (``services.direct_messages.unread_count`` and
    ``services.notifications.unread_badge`` give the same figures one by one), kept until
    anything is committed (``NodeContext.cached``)."""
    messages, notifications = await ctx.cached(
        ("badges", member.id), lambda: q.navigation_counts(ctx.store.reader, member.id,
                                                           BADGE_CAP))
    return Badges(messages=messages, notifications=notifications)
