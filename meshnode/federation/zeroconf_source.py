"""python-zeroconf loaded from its Python source rather than its Cython build (issue 17).

zeroconf's wheels ship each module twice: a Cython extension (``.so``) and the ``.py`` it is
compiled from; the project runs on either (its ``SKIP_CYTHON`` builds are the pure ones).
Measured with ``scripts/bench_memory.py``'s method on this node's other imports: the
extensions cost 3.7 MB of resident memory, the source 1.5 MB. Their speed matters on a busy
network of hundreds of services, not for a node that hears a few neighbours' adverts a
minute. So :func:`load_zeroconf` imports zeroconf with a finder that prefers each module's
``.py`` beside its extension, for the duration of that import only.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = "zeroconf"


class SourceFinder(MetaPathFinder):
    """Finds zeroconf's modules as Python source where an extension stands beside it."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        """The spec of ``fullname``'s ``.py`` when it is a zeroconf extension module."""
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin is None or not isinstance(
                spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        extension = Path(spec.origin)
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        if not source.is_file():
            return spec
        return importlib.util.spec_from_file_location(
            fullname, source, submodule_search_locations=spec.submodule_search_locations)


def load_zeroconf(*, compiled: bool = False) -> ModuleType:
    """Import ``zeroconf.asyncio`` (and so all of zeroconf), from source unless ``compiled``.

    A zeroconf already imported (by a test, say) is used as it is.
    """
    if compiled or PACKAGE in sys.modules:
        return importlib.import_module(f"{PACKAGE}.asyncio")
    finder = SourceFinder()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(f"{PACKAGE}.asyncio")
    finally:
        sys.meta_path.remove(finder)
