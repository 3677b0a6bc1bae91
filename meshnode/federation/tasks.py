"""Background-task hygiene for the federation and discovery loops.

Two rules, each written down once because getting them wrong hangs a shutdown:

* A worker that sleeps "until woken or ``poll`` seconds" must use :func:`wait_event`, not
  ``asyncio.wait_for(event.wait(), poll)``: on Python 3.11, ``wait_for`` returns the inner
  result when the event fires in the same loop iteration as the task's ``cancel()``, and
  the cancellation is lost (https://github.com/python/cpython/issues/86296, fixed only by
  the 3.12 rewrite). The worker then loops forever and whoever awaits it at shutdown hangs.
* Whoever starts a task cancels it and awaits it exactly once, with a bound on the wait,
  logging what it raised (:func:`cancel_and_wait`); its own cancellation propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0  # seconds a cancelled task gets to finish before we give up on it


async def wait_event(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set.

    Cancellation of the calling task always propagates (``asyncio.timeout`` counts
    cancellations, unlike 3.11's ``wait_for``).
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[None] | None], *, what: str, timeout: float = STOP_TIMEOUT  # noqa: ASYNC109
) -> None:
    """Cancel ``tasks`` and wait (at most ``timeout`` s) for them to finish.

    Exceptions other than the cancellation are logged, never dropped; a task still running
    after ``timeout`` is logged with its stack (it ignores cancellation: a bug to fix).
    If the calling task is itself cancelled meanwhile, that CancelledError propagates.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    done, stuck = await asyncio.wait(pending, timeout=timeout)
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            log.error("%s: task %s failed", what, task.get_name(), exc_info=exc)
    for task in stuck:
        log.error("%s: task %s ignored cancellation for %.1f s; stack: %s",
                  what, task.get_name(), timeout, task.get_stack())


async def bounded(awaitable: Awaitable[object], *, what: str,
                  timeout: float = STOP_TIMEOUT) -> None:  # noqa: ASYNC109
    """Await a shutdown step for at most ``timeout`` s; a timeout or error is logged.

    Used in ``finally`` blocks so that one failed step (a goodbye that cannot be sent)
    does not skip the next ones (closing the sockets). Cancellation propagates.
    """
    try:
        async with asyncio.timeout(timeout):
            await awaitable
    except TimeoutError:
        log.exception("%s did not finish within %.1f s", what, timeout)
    except Exception:  # a shutdown step: report it, then let the next step run
        log.exception("%s failed", what)
