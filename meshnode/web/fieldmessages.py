"""Validation messages produced below the web layer, marked here so they get translated.

The protocol and service layers speak English; the pages pass every field message through
gettext, so a message listed here is shown in the reader's language. Messages built from
values are ``Text`` templates (protocol/translatable.py), translated with their values by
``Translator.gettext``/``Translator.error``; test_i18n.py checks that every error message a
page can show is in both catalogues.
"""

from __future__ import annotations

from meshnode.web.i18n import N_

FIELD_MESSAGES = (
    N_("between 3 and 120 characters"), N_("required"), N_("must be text"), N_("required text"),
    N_("whole number, 1-1000"), N_("between 1 and 8 seats"), N_("a positive number, e.g. 2.5"),
    N_("must be in the future"), N_("at most one year ahead"), N_("not a date-time"),
    N_("use e.g. 2026-12-05T09:30:00+01:00"), N_("include a timezone, e.g. +01:00 or Z"),
    N_("offer or request"), N_("must be a string"),
    N_("use digits with an optional decimal point, e.g. 12.50"), N_("at most 2 decimal places"),
    N_("at most 1 decimal places"), N_("at most 0 decimal places"), N_("must be > 0"),
    N_("amount too large"), N_("latitude between -90 and 90"),
    N_("longitude between -180 and 180"), N_("cannot exceed the target quantity"),
    N_("must be after available_from"), N_("at most 5000 characters"),
    N_("at most 200 characters"), N_("1-30 lowercase letters, digits or _"),
    N_("at least 8 characters"), N_("already taken"), N_("the two passwords differ"),
    N_("wrong password"), N_("between 1 and 80 characters"), N_("at most 1000 characters"),
    N_("between 1 and 90 days"), N_("at most 2000 characters"), N_("unknown language"),
    N_("one of kg, g, l, unit, bunch, box, portion, seat, hour"),
    N_("one of hour, day, week, month"), N_("a number"), N_("e.g. 45.76,4.83"),
    N_("latitude/longitude out of range"), N_("0-500"), N_("unknown value"),
    N_("1 to 2000 characters"), N_("3 to 1000 characters"),
    N_("an object with mode free, amount or swap"), N_("at most 200 characters"),
    N_("this listing was withdrawn and can no longer change"),
    N_("the listing changed meanwhile; reload it and try again"),
    N_("a listing has at most 4 images"), N_("the file is not a readable image"),
    N_("Bad Request"), N_("Conflict"), N_("Too Many Requests"), N_("Internal Server Error"),
)
# The ledger's (services/ledger.py, protocol/ledger.py) field and conflict messages.
LEDGER_MESSAGES = (
    N_("a member's username"), N_("unknown member"), N_("member is disabled"),
    N_("cannot be yourself"), N_("cross-community payments are not available yet"),
    N_("a listing id"), N_("unknown listing"), N_("1-90"), N_("≤ 0"), N_("≥ 0"),
    N_("too high"), N_("too low"), N_("e.g. -300 or 1000"), N_("limit too large"),
    N_("at most 500 characters"), N_("this payment request is already approved"),
    N_("this payment request is already declined"),
    N_("this payment request is already expired"),
    N_("this payment request was decided meanwhile"),
    N_("this transaction was already reversed"),
    N_("a reversal cannot itself be reversed; make a new payment"),
)
# Reasons the pages (and aiohttp) give for a 4xx that the error page shows.
PAGE_MESSAGES = (
    N_("choose a photo"), N_("unknown action"), N_("unknown category"),
    N_("Request Entity Too Large"), N_("Method Not Allowed"), N_("Service Unavailable"),
    N_("Unprocessable Entity"), N_("Unsupported Media Type"),
)
