"""What the layers above may ask about the store's health (a full disk, say)."""

from __future__ import annotations

from meshnode.store.db import is_storage_full

__all__ = ["is_storage_full"]
