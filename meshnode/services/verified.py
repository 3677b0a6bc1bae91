"""Signed documents already verified with a key: an Ed25519 check is not redone for them.

A listing's page verifies its stored document again on every view (``services/trust``), so
a row altered in the database after its check never shows as verified. The outcome of a
check depends only on the exact text and the key (RFC 8032 verification is deterministic),
so a document verified once with a key verifies again: those pairs are kept, by one SHA-256
of the text, the key and its id, for as long as they are among the ``max_entries`` most
recently used. Any other bytes (a tampered row) are verified afresh; failures are never kept.
It used to be kept only until the next commit, which under a node's writes (or 10,000
listings viewed at random) meant nearly every view paid the check: 5-10 % of a listing's
page (issue 17).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

MAX_VERIFIED = 2048  # 32-byte digests: ~0.3 MB when full


def verification_token(document_text: str, key_id: str, public_key: bytes) -> bytes:
    """One digest naming the exact text, the key and the key's id (the key is 32 bytes and
    the text's digest 32, so the three parts cannot run into each other)."""
    text = hashlib.sha256(document_text.encode()).digest()
    return hashlib.sha256(text + public_key + key_id.encode()).digest()


class VerifiedDocuments:
    """A bounded set of ``verification_token``s whose check succeeded (least recently used
    dropped first)."""

    def __init__(self, *, max_entries: int = MAX_VERIFIED) -> None:
        self.max_entries = max_entries
        self._tokens: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        if token not in self._tokens:
            return False
        self._tokens.move_to_end(token)  # type: ignore[arg-type]
        return True

    def add(self, token: bytes) -> None:
        """Keep ``token`` (a check that succeeded)."""
        self._tokens[token] = None
        self._tokens.move_to_end(token)
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)

    def clear(self) -> None:
        """Forget every token (an idle node gives the memory back)."""
        self._tokens.clear()
