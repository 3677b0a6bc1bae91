"""The search form's option lists and filters, rendered once per language and selection
(issue 17).

Every search page showed the kinds, categories and statuses as ``<option>`` elements, each
label translated by a Jinja call: two thirds of an uncached search page's time went to that
form. The labels only depend on the reader's language (the catalogues are compiled once, at
start) and on which value is selected, so each list is rendered once per
(language, list, selected value) and kept for the life of the app: a few dozen strings.

The form's filters (everything but the words typed) were still a third of a search page's
template time (labels, the places, seven ``error_for`` calls): their HTML depends only on the
language, the filters chosen and the community's known places, so it is rendered once per
such key and kept in a small LRU (``web/fragments.py``); the words, free text, stay out of
the key and are rendered with the page. A refused search (its messages by the fields) is
rendered every time and never kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from meshnode.services.places import Place
from meshnode.web.fragments import FragmentCache
from meshnode.web.i18n import Translator

if TYPE_CHECKING:
    import jinja2  # the environment is passed in (web/templating.py imports it lazily)

FILTERS_TEMPLATE = "_search_filters.html"
# The query's keys the filters show (the words, ``q``, are rendered with the page).
FILTER_KEYS = ("kind", "category", "price", "status", "near", "radius_km")
# About 3 KB each: at most 256 of them and 512 KiB (a Pi's budget, issue 17).
FILTERS_KEPT = 256
FILTERS_MAX_BYTES = 512 * 1024

# name of the <select> -> (values in order, the untranslated label of each)
OptionLists = Mapping[str, tuple[tuple[str, ...], Mapping[str, str]]]


class SearchOptions:
    """``<option>`` lists of the search form by (language, list, selected value)."""

    def __init__(self, lists: OptionLists) -> None:
        self._lists = lists
        self._html: dict[tuple[str, str, str], Markup] = {}
        self.filters_kept = FragmentCache(FILTERS_KEPT, FILTERS_MAX_BYTES)

    def __len__(self) -> int:
        """How many option lists are kept."""
        return len(self._html)

    def clear(self) -> None:
        """Forget the kept filters (an idle node gives the memory back: web/idle.py); the
        option lists, a few dozen strings, stay."""
        self.filters_kept.clear()

    def filters(self, env: jinja2.Environment, tr: Translator, query: Mapping[str, str],
                errors: Mapping[str, str], places: Sequence[Place], places_version: int
                ) -> Markup:
        """The form's filters for ``query`` in ``tr``'s language: kept per (language, known
        places' version, the filters' values); with ``errors``, rendered and not kept."""

        def context() -> dict[str, Any]:
            return {"_": tr.gettext, "fmt": tr, "search_options": self, "query": query,
                    "errors": errors, "places": places}

        if errors:
            return Markup(env.get_template(FILTERS_TEMPLATE).render(context()))  # noqa: S704
        key = (tr.lang, places_version, *(query.get(name, "") for name in FILTER_KEYS))
        return self.filters_kept.render(env, FILTERS_TEMPLATE, key, context)

    def html(self, tr: Translator, name: str, selected: str) -> Markup:
        """The options of list ``name`` in ``tr``'s language, ``selected`` marked (a value
        that is not in the list selects nothing, as the template did)."""
        values, labels = self._lists[name]
        chosen = selected if selected in values else ""
        key = (tr.lang, name, chosen)
        found = self._html.get(key)
        if found is None:
            found = self._html[key] = Markup("").join(
                Markup('<option value="{}"{}>{}</option>').format(
                    value, Markup(" selected") if value == chosen else "",
                    escape(tr.gettext(labels[value])))
                for value in values)
        return found
