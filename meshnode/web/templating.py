"""The members' pages' Jinja2 environment, built when the first page is rendered (issue 17).

Jinja2 (its lexer, parser, compiler and runtime) costs about 3 MB of a node's resident memory,
and a node that only federates, answers the JSON API or sits idle on a Raspberry Pi renders
no page at all: so the package is imported, and the environment made, on the first render
rather than at start-up. Templates are then compiled one by one as pages ask for them (Jinja's
own bounded template cache) and kept for the process's life (``auto_reload=False``: they
ship in the package, no ``stat()`` per render).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


class Templates:
    """The Jinja2 environment of ``meshnode/web/templates``, made on first use."""

    def __init__(self) -> None:
        self._env: jinja2.Environment | None = None

    @property
    def loaded(self) -> bool:
        """Whether a page has been rendered yet (tests, ``bench_memory.py``)."""
        return self._env is not None

    @property
    def env(self) -> jinja2.Environment:
        """The environment: autoescaped HTML, undefined names are errors."""
        if self._env is None:
            import jinja2  # on the first rendered page only (see the module docstring)

            from meshnode.web.macros import GLOBALS

            self._env = jinja2.Environment(
                loader=jinja2.PackageLoader("meshnode.web", "templates"),
                autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                auto_reload=False,
            )
            self._env.globals.update(GLOBALS)  # csrf_field, error_for, described
        return self._env
