"""SQLite storage: schema, migrations and queries. Nothing above this package writes SQL."""

from meshnode.store.db import Store, StoreError

__all__ = ["Store", "StoreError"]
