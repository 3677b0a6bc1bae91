"""Who may do what: the one admin check every use case and API route calls."""

from __future__ import annotations

from meshnode.errors import PermissionDeniedError
from meshnode.protocol.translatable import Text
from meshnode.store.members import MemberRow


def require_admin(member: MemberRow | None, refusal: str | Text) -> None:
    """Raise PermissionDeniedError (403) with ``refusal`` unless ``member`` is an admin.

    ``None`` is the node's operator on the command line (``meshnode trustline …``), who
    holds the data directory and so every right; only use cases the CLI calls pass it.
    """
    if member is not None and not member.is_admin:
        raise PermissionDeniedError(refusal)
