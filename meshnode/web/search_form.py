"""The search form's option lists, rendered once per language and selection (issue 17).

Every search page showed the kinds, categories and statuses as ``<option>`` elements, each
label translated by a Jinja call: two thirds of an uncached search page's time went to that
form. The labels only depend on the reader's language (the catalogues are compiled once, at
start) and on which value is selected, so each list is rendered once per
(language, list, selected value) and kept for the life of the app: a few dozen strings.
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

from meshnode.web.i18n import Translator

# name of the <select> -> (values in order, the untranslated label of each)
OptionLists = Mapping[str, tuple[tuple[str, ...], Mapping[str, str]]]


class SearchOptions:
    """``<option>`` lists of the search form by (language, list, selected value)."""

    def __init__(self, lists: OptionLists) -> None:
        self._lists = lists
        self._html: dict[tuple[str, str, str], Markup] = {}

    def __len__(self) -> int:
        return len(self._html)

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
