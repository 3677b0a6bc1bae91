#!/usr/bin/env python3
"""Write ``meshnode/web/routes_table.py`` from the ``setup_*`` functions (``web/routes.py``).

Run after adding or changing a route: ``PYTHONPATH=. python scripts/update_routes.py``.
``tests/web/test_lazy_routes.py`` fails while the table is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshnode.web.lazyroutes import table_source
from meshnode.web.routes import TABLE_PATH, current_table


def main() -> int:
    """Record the routes and write the table; say how many."""
    table = current_table()
    TABLE_PATH.write_text(table_source(table), encoding="utf-8")
    print(f"{TABLE_PATH}: {len(table)} resources,"
          f" {sum(len(methods.split()) for _, _, routes in table for methods, _ in routes)}"
          " routes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
