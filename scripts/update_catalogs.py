"""Re-extract translatable strings and merge them into the committed .po catalogues.

Usage: ``python scripts/update_catalogs.py`` from the repository root, then translate the new
(empty) entries in meshnode/web/locale/fr/LC_MESSAGES/messages.po. The .po files are compiled
in memory when the node starts (meshnode/web/i18n.py); no .mo file is built or committed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "meshnode" / "web" / "locale"
POT = ROOT / "build" / "messages.pot"


def main() -> int:
    POT.parent.mkdir(exist_ok=True)
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    subprocess.run([*pybabel, "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_", "-k", "N_",
                    "-k", "ngettext:1,2", "--no-location", "--sort-output", "-o", str(POT),
                    str(ROOT)], check=True)
    subprocess.run([*pybabel, "update", "-i", str(POT), "-d", str(LOCALE), "-D", "messages",
                    "--no-fuzzy-matching", "--ignore-obsolete", "--width", "100"], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
