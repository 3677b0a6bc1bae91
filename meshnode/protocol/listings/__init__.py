"""Listings: input validation and the FEP-0837 ``Proposal`` they become on the wire.

Pure functions: input dicts and an explicit ``now`` in, a ``ListingDraft`` or a JSON-LD
document out, ``ValidationError`` (with per-field messages) on bad input.
FEP-0837: https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md
Modules: ``model`` (kinds, categories, caps, the draft), ``details`` (per-category fields),
``input`` (member input), ``proposal`` (the wire document). This package re-exports them.
"""

from meshnode.protocol.listings.details import CATEGORY_FIELDS, DetailField, FieldParser
from meshnode.protocol.listings.input import draft_to_input, merge_patch, parse_listing_input
from meshnode.protocol.listings.model import (
    CATEGORIES,
    DEFAULT_LIFETIME,
    DESCRIPTION_MAX,
    EDITABLE_STATUSES,
    KINDS,
    MAX_LIFETIME,
    PRICE_MODES,
    PRICE_PERIODS,
    STATUSES,
    TEXT_FIELD_MAX,
    TITLE_MAX,
    TOP_LEVEL_FIELDS,
    UNITS,
    CurrencyRef,
    ImageRef,
    ListingDraft,
    Location,
    Price,
    UnknownCategoryError,
)
from meshnode.protocol.listings.proposal import build_proposal, build_tombstone, parse_proposal

__all__ = [
    "CATEGORIES",
    "CATEGORY_FIELDS",
    "DEFAULT_LIFETIME",
    "DESCRIPTION_MAX",
    "EDITABLE_STATUSES",
    "KINDS",
    "MAX_LIFETIME",
    "PRICE_MODES",
    "PRICE_PERIODS",
    "STATUSES",
    "TEXT_FIELD_MAX",
    "TITLE_MAX",
    "TOP_LEVEL_FIELDS",
    "UNITS",
    "CurrencyRef",
    "DetailField",
    "FieldParser",
    "ImageRef",
    "ListingDraft",
    "Location",
    "Price",
    "UnknownCategoryError",
    "build_proposal",
    "build_tombstone",
    "draft_to_input",
    "merge_patch",
    "parse_listing_input",
    "parse_proposal",
]
