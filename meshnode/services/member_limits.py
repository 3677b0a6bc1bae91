"""Per-member allowances: how many listings, messages and payment requests per hour.

A use case marked ``@member_limited(kind)`` counts one event for its member before it runs
and gives it back if it fails, so refused or invalid attempts use nothing, and a member over
the allowance gets ``RateLimitedError`` (429 with ``Retry-After``) before anything is
validated, signed or stored. The window slides: the allowance is "any 60 minutes".
Limits come from ``[limits]`` in config.toml (``config.LimitsConfig``; 0 = no limit).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Concatenate, Literal, ParamSpec, TypeVar

from meshnode.config import LimitsConfig
from meshnode.protocol.translatable import N_, Text
from meshnode.services.context import NodeContext
from meshnode.services.ratelimit import rate_limited
from meshnode.store.members import MemberRow

P = ParamSpec("P")
R = TypeVar("R")

Kind = Literal["listings", "messages", "payment_requests"]
WINDOW = timedelta(hours=1)
# What the refusal calls each kind ("at most 60 new listings per hour").
NOUNS: dict[Kind, str] = {
    "listings": N_("new listings"),
    "messages": N_("messages"),
    "payment_requests": N_("payment requests"),
}


def per_hour(limits: LimitsConfig, kind: Kind) -> int:
    """The configured allowance for ``kind`` (0: unlimited)."""
    return {
        "listings": limits.listings_per_hour,
        "messages": limits.messages_per_hour,
        "payment_requests": limits.payment_requests_per_hour,
    }[kind]


def member_limited(
    kind: Kind,
) -> Callable[
    [Callable[Concatenate[NodeContext, MemberRow, P], Awaitable[R]]],
    Callable[Concatenate[NodeContext, MemberRow, P], Awaitable[R]],
]:
    """Decorate a use case ``(ctx, member, …)`` with the member's hourly allowance of ``kind``."""

    def decorate(
        use_case: Callable[Concatenate[NodeContext, MemberRow, P], Awaitable[R]],
    ) -> Callable[Concatenate[NodeContext, MemberRow, P], Awaitable[R]]:
        @functools.wraps(use_case)
        async def limited(
            ctx: NodeContext, member: MemberRow, /, *args: P.args, **kwargs: P.kwargs
        ) -> R:
            limit = per_hour(ctx.config.limits, kind)
            if not limit:
                return await use_case(ctx, member, *args, **kwargs)
            now, key = ctx.clock(), (member.id, kind)
            wait = ctx.member_limits.take(key, limit=limit, window=WINDOW, now=now)
            if wait:
                raise rate_limited(Text(NOUNS[kind]), limit, wait)
            try:
                return await use_case(ctx, member, *args, **kwargs)
            except BaseException:
                ctx.member_limits.give_back(key, now)  # nothing was created
                raise

        return limited

    return decorate
