"""A node's published block list: the origins it blocks, as an ActivityStreams collection
signed by the node (FEP-8b32, eddsa-jcs-2022, https://w3id.org/fep/8b32), and the checks a
subscriber makes before proposing any of it to its admin.

Pure: the caller signs, fetches and verifies the proof; this builds and reads the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT

__all__ = ["MAX_BLOCKLIST_ITEMS", "blocklist_document", "parse_blocklist"]

MAX_BLOCKLIST_ITEMS: Final = 1000


def blocklist_document(*, collection_id: str, actor: str, origins: Iterable[str],
                       updated: str) -> dict[str, Any]:
    """The unsigned collection: ``orderedItems`` are the blocked origins, sorted."""
    items = sorted(set(origins))[:MAX_BLOCKLIST_ITEMS]
    return {
        "@context": [AS_CONTEXT, DATA_INTEGRITY_CONTEXT],
        "id": collection_id,
        "type": "OrderedCollection",
        "attributedTo": actor,
        "updated": updated,
        "totalItems": len(items),
        "orderedItems": items,
    }


def _origin_item(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("a block list item must be an origin URL")
    origin = origin_of(value)
    if origin != value.rstrip("/"):
        raise ValidationError(f"{value[:100]!r} is not an origin (scheme://host[:port])")
    return origin


def parse_blocklist(document: object, *, expected_id: str, expected_actor: str,
                    here: str) -> tuple[str, ...]:
    """The origins a peer's list proposes (ours and the peer's own left out); refused unless
    it is the collection at ``expected_id``, by ``expected_actor``, within the cap."""
    if not isinstance(document, Mapping):
        raise ValidationError("a block list is a JSON object")
    if document.get("id") != expected_id or document.get("type") != "OrderedCollection":
        raise ValidationError("not the peer's block list collection")
    if document.get("attributedTo") != expected_actor:
        raise ValidationError("the block list is not attributed to the peer's actor")
    items = document.get("orderedItems")
    if not isinstance(items, list):
        raise ValidationError("the block list has no orderedItems")
    if len(items) > MAX_BLOCKLIST_ITEMS:
        raise ValidationError(f"a block list has at most {MAX_BLOCKLIST_ITEMS} items")
    skip = {here, origin_of(expected_actor)}
    return tuple(dict.fromkeys(o for o in map(_origin_item, items) if o not in skip))
