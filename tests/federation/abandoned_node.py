"""A process whose node is not cleaned up before its event loop ends (run by a test).

``python -m tests.federation.abandoned_node DATA_DIR abandon|cancel``: starts a node with
mDNS discovery on 127.0.0.1, then either returns from ``asyncio.run`` without cleaning up
(``abandon``: the loop cancels the tasks and closes the cleanup-context generators itself)
or cancels the cleanup as it starts (``cancel``: a process told to stop twice). Prints
``exited`` when ``asyncio.run`` returns.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web

from meshnode.app import create_app
from tests.conftest import make_config
from tests.nodeproc import free_port


async def main(data_dir: Path, mode: str) -> None:
    port = free_port()
    config = make_config(
        data_dir, name="Abandoned", handle="abandoned", public_url=f"http://127.0.0.1:{port}",
        port=port, host="127.0.0.1", discovery_policy="auto",
        discovery_interfaces=("127.0.0.1",),
    )
    runner = web.AppRunner(create_app(config), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.sleep(0.3)  # registration probing under way, verifier looping
    if mode == "cancel":
        cleanup = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0)
        cleanup.cancel()
        await asyncio.wait({cleanup})


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
    print("exited", flush=True)
