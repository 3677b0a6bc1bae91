"""What a node can honestly say about a listing's signature: a verdict kept per version.

Pure: the verdict is built from the stored check and the author's keys known now; whoever
reads the clock and the database passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from meshnode.protocol.records import quick_init

# FEP-8b32 object integrity proof, eddsa-jcs-2022 cryptosuite, the key listed in the
# author's own actor document (https://codeberg.org/fediverse/fep/src/branch/main/fep/8b32/fep-8b32.md).
RULE_REMOTE = "eddsa-jcs-2022/fep-8b32"
# Signed here with the local member's own key (the same proof, checked against our own record).
RULE_LOCAL = "eddsa-jcs-2022/local-member-key"
ERROR_MAX = 200


class SignatureStatus(Enum):
    """The mark shown on a listing."""

    VERIFIED = "verified"
    INVALID = "invalid"
    KEY_CHANGED = "key_changed"  # verified with a key the author no longer lists
    UNCHECKED = "unchecked"  # stored before checks were kept, or never checked here


@quick_init
@dataclass(frozen=True)
class SignatureCheck:
    """One verification of one stored version: its outcome, the key, when, by which rule."""

    verified: bool
    key_id: str | None
    fingerprint: str | None
    rule: str
    checked_at: str
    error: str | None = None


@dataclass(frozen=True)
class ListingTrust:
    """A listing's stored check read against the author's keys as known now."""

    status: SignatureStatus
    check: SignatureCheck | None

    def to_json(self) -> dict[str, Any]:
        """``signature`` of an API listing: ``{verified, checked_at, key, ...}``."""
        check = self.check
        return {
            "verified": self.status is SignatureStatus.VERIFIED,
            "status": self.status.value,
            "checked_at": check.checked_at if check else None,
            "key": check.key_id if check else None,
            "fingerprint": check.fingerprint if check else None,
            "rule": check.rule if check else None,
            "key_changed": self.status is SignatureStatus.KEY_CHANGED,
            "error": check.error if check else None,
        }


def verdict(check: SignatureCheck | None, current_keys: dict[str, str] | None) -> ListingTrust:
    """The verdict for ``check`` given the author's keys now (key id → fingerprint).

    ``current_keys`` None means the node does not know the author's keys today (nothing to
    compare with); an empty dict means the author lists no Ed25519 key any more.
    """
    if check is None:
        return ListingTrust(SignatureStatus.UNCHECKED, None)
    if not check.verified:
        return ListingTrust(SignatureStatus.INVALID, check)
    if current_keys is not None and current_keys.get(check.key_id or "") != check.fingerprint:
        return ListingTrust(SignatureStatus.KEY_CHANGED, check)
    return ListingTrust(SignatureStatus.VERIFIED, check)


def failed(rule: str, checked_at: str, error: str, key_id: str | None = None,
           fingerprint: str | None = None) -> SignatureCheck:
    """A failed check, its reason capped."""
    return SignatureCheck(False, key_id, fingerprint, rule, checked_at, error[:ERROR_MAX])
