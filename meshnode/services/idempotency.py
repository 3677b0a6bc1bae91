"""Idempotency keys for the JSON API: the use cases the web middleware calls.

The rows and the commit hook live in the store (``store/idempotency.py``, ``store/db.py``);
this module is the one door the web layer goes through (see ``tests/test_layers.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshnode.store import idempotency as keys
from meshnode.store.db import COMMIT_HOOK
from meshnode.store.idempotency import Claim, CommitMark, KeyRow

__all__ = ["Claim", "CommitMark", "KeyRow", "claim", "marking_commits",
           "prune", "record_answer", "release"]

claim = keys.claim
record_answer = keys.record_answer
release = keys.release
prune = keys.prune


@contextmanager
def marking_commits(mark: CommitMark) -> Iterator[None]:
    """Within the block, the first write transaction also marks the key as committed."""
    token = COMMIT_HOOK.set(mark)
    try:
        yield
    finally:
        COMMIT_HOOK.reset(token)
