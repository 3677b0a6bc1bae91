"""What every ``meshnode`` subcommand module shares: running a use case against a data dir."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from meshnode.config import load_config
from meshnode.services.context import NodeContext


def run_with_context(data_dir: Path, action: Callable[[NodeContext], Awaitable[int]]) -> int:
    """Open the node in ``data_dir`` (store and keys), run ``action``, close; its exit code."""
    config = load_config(data_dir)

    async def runner() -> int:
        ctx = await NodeContext.open(config)
        try:
            return await action(ctx)
        finally:
            await ctx.close()

    return asyncio.run(runner())
