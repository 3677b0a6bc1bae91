"""The node's public URL scheme: the one place that knows how ids and pages are spelled."""

from __future__ import annotations


def member_actor(base_url: str, username: str) -> str:
    """ActivityPub id (and profile page) of a member."""
    return f"{base_url}/users/{username}"


def community_actor(base_url: str, handle: str) -> str:
    """ActivityPub id of the community's ``Group`` actor."""
    return f"{base_url}/groups/{handle}"


def listing_object(base_url: str, listing_id: str) -> str:
    """ActivityPub id (and HTML page) of a listing."""
    return f"{base_url}/listings/{listing_id}"


def ed25519_key_id(actor_id: str) -> str:
    """FEP-521a verification method id of an actor's Ed25519 Multikey."""
    return f"{actor_id}#ed25519-key"


def rsa_key_id(actor_id: str) -> str:
    """Id of an actor's RSA ``publicKey`` (draft-cavage key id)."""
    return f"{actor_id}#main-key"


def media_url(base_url: str, listing_id: str, filename: str) -> str:
    """Public URL of a stored listing image."""
    return f"{base_url}/media/{listing_id}/{filename}"


def currency_uri(base_url: str) -> str:
    """IRI naming the community currency (``resourceConformsTo`` of a price)."""
    return f"{base_url}/currency"
