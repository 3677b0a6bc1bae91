"""SQLite storage: schema, migrations and queries. Nothing above this package writes SQL."""

from meshnode.store.db import StorageFullError, StorageHealth, Store, StoreError

__all__ = ["StorageFullError", "StorageHealth", "Store", "StoreError"]
