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


def ledger_transaction(base_url: str, transaction_id: str) -> str:
    """IRI of a ledger transaction (its signed ``EconomicEvent``)."""
    return f"{base_url}/ledger/transactions/{transaction_id}"


def ledger_request(base_url: str, request_id: str) -> str:
    """IRI of a payment request (the payee's signed ``Offer``)."""
    return f"{base_url}/ledger/requests/{request_id}"


def ledger_system_account(base_url: str, handle: str, name: str) -> str:
    """IRI of a community-held account such as the fund (``sys:fund`` → ``…/accounts/fund``)."""
    return f"{community_actor(base_url, handle)}/accounts/{name.removeprefix('sys:')}"


def category_search_template(base_url: str) -> str:
    """The search page of one category, with ``{category}`` to fill (Notes' hashtag links)."""
    return f"{base_url}/search?category={{category}}"
