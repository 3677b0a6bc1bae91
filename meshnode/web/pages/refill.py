"""Refused actions come back as the form they came from: one mechanism for every action form.

A booking, a slot, a pledge, a payment or a deal action that the services refuse (a typed
error: too much asked, an overlapping slot, a limit, no trust line...) is not a dead-end error
page: the handler renders its own page again with the member's input kept and the message next
to the field it is about (or above the form when it is about the whole form), with the status
``web/errors.py`` gives that error. The listing form (``pages/listings.py``) works the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from meshnode.errors import CommunityUnreachableError, ConflictError, PermissionDeniedError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import message_of
from meshnode.web.errors import status_for

# What a member can be refused on a form and do something about on the same page (CapacityError,
# TransitionError and NotYourMoveError are ValidationErrors). Not found and storage errors keep
# the error page: there is no form to come back to.
# LimitExceededError is a ConflictError.
REFUSALS = (ValidationError, ConflictError, CommunityUnreachableError, PermissionDeniedError)
WHOLE_FORM = ""


@dataclass(frozen=True)
class FormState:
    """A form's typed values and its messages by field name (``""``: the whole form)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    status: int = 200


def refusal_errors(exc: Exception, fields: Collection[str]) -> dict[str, str]:
    """Messages by field for a refused action.

    Invalid input (422) keeps the validator's message per field, as the listing form does; a
    conflict (409: more than is left, an overlapping slot, no trust line, a limit) puts the
    whole sentence next to each field it names, so the member reads why, not "more than
    available". Fields the form does not have fold into the whole-form message.
    """
    named = {name: text for name, text in (getattr(exc, "fields", None) or {}).items()
             if name in fields}
    if not named:
        return {WHOLE_FORM: message_of(exc)}
    if status_for(exc) == 422 and type(exc) is ValidationError:
        return named
    return dict.fromkeys(named, message_of(exc))


def refused(exc: Exception, values: dict[str, str], fields: Collection[str]) -> FormState:
    """The form to show again after ``exc``: the input kept, the messages placed, the status."""
    return FormState(values=values, errors=refusal_errors(exc, fields), status=status_for(exc))
