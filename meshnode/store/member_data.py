"""Queries behind a member's data export (RGPD): every table that holds something about one
member, read a page at a time so a member with many listings never fills memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class Owner:
    """Who the export is about: the member row id, ledger account and actor URI."""

    member_id: int
    account: str
    actor: str


# Each section: SQL selecting ``k`` (a keyset cursor, increasing; a page always ends with the
# last row of its key) and the exported columns, for rows with k > :after of the member
# :member (:account, :actor), at least :limit rows unless it is the last page.
# Password hashes, sealed private keys, token and session hashes are never selected.
SECTIONS: dict[str, str] = {
    "profile": (
        "SELECT id AS k, username, display_name, bio, is_admin, locale, disabled_at,"
        " hex(ed25519_public) AS ed25519_public_hex, rsa_public_pem, created_at"
        " FROM members WHERE id = :member AND id > :after LIMIT :limit"),
    "api_tokens": (
        "SELECT rowid AS k, id, label, created_at, revoked_at FROM api_tokens"
        " WHERE member_id = :member AND rowid > :after ORDER BY rowid LIMIT :limit"),
    "listings": (
        "SELECT seq AS k, id, object_id, kind, category, status, title, description,"
        " price_mode, price_amount, price_period, location_name, lat, lon, details,"
        " expires_at, published_at, updated_at, version, hidden, signed_object FROM listings"
        " WHERE author_id = :member AND seq > :after ORDER BY seq LIMIT :limit"),
    # Keyset on the listing (seq): every version of a page of listings (each has at least
    # one); a cursor on the versions made SQLite sort all the member's versions per page.
    "listing_versions": (
        "SELECT l.seq AS k, v.listing_id, v.version,"
        " COALESCE(NULLIF(v.signed_object, ''), l.signed_object) AS signed_object,"
        " v.created_at"
        " FROM listings l JOIN listing_versions v ON v.listing_id = l.id"
        " WHERE l.seq IN (SELECT seq FROM listings WHERE author_id = :member AND seq > :after"
        " ORDER BY seq LIMIT :limit) ORDER BY l.seq, v.version"),
    "listing_images": (
        "SELECT i.rowid AS k, i.id, i.listing_id, i.position, i.filename, i.media_type,"
        " i.width, i.height, i.size_bytes, i.alt, i.created_at FROM listing_images i"
        " JOIN listings l ON l.id = i.listing_id"
        " WHERE l.author_id = :member AND i.rowid > :after ORDER BY i.rowid LIMIT :limit"),
    "messages_local": (
        "SELECT m.id AS k, m.listing_id, s.username AS sender, r.username AS recipient,"
        " m.body, m.created_at, m.read_at FROM messages m"
        " JOIN members s ON s.id = m.sender_id JOIN members r ON r.id = m.recipient_id"
        " WHERE (m.sender_id = :member OR m.recipient_id = :member) AND m.id > :after"
        " ORDER BY m.id LIMIT :limit"),
    "messages_remote": (
        "SELECT id AS k, remote_actor, remote_handle, direction, listing_id, object_id,"
        " in_reply_to, body, created_at, read_at FROM direct_messages"
        " WHERE member_id = :member AND id > :after ORDER BY id LIMIT :limit"),
    "blocked_actors": (
        "SELECT rowid AS k, actor, created_at FROM member_blocks"
        " WHERE member_id = :member AND rowid > :after ORDER BY rowid LIMIT :limit"),
    "deals": (
        "SELECT rowid AS k, id, agreement_id, offer_id, listing_id, category, booker_uri,"
        " author_uri, state, quantity, slot_start, slot_end, amount, deposit, message, reason,"
        " offer, answer, agreed_at, expires_at, created_at, updated_at FROM deals"
        " WHERE (booker_id = :member OR author_id = :member) AND rowid > :after"
        " ORDER BY rowid LIMIT :limit"),
    "deal_events": (
        "SELECT e.seq AS k, e.deal_id, e.action, e.from_state, e.to_state, e.actor,"
        " e.payments, e.at FROM deal_events e JOIN deals d ON d.id = e.deal_id"
        " WHERE (d.booker_id = :member OR d.author_id = :member) AND e.seq > :after"
        " ORDER BY e.seq LIMIT :limit"),
    "feedback": (
        "SELECT rowid AS k, id, deal_id, author_uri, subject_uri, rating, comment, no_show,"
        " document, created_at FROM deal_feedback"
        " WHERE (author_uri = :actor OR subject_uri = :actor) AND rowid > :after"
        " ORDER BY rowid LIMIT :limit"),
    "receipts": (
        "SELECT seq AS k, deal, party_actor, other_actor, party_node, other_node,"
        " completed_at, rating, no_show, other_rating, other_no_show, state, source, document,"
        " checked_at FROM deal_receipts WHERE holder_id = :member AND seq > :after"
        " ORDER BY seq LIMIT :limit"),
    "ledger_entries": (
        "SELECT seq AS k, id, kind, payer_account, payee_account, amount, memo, listing_id,"
        " reverses, request_id, signer, created_at, document, prev_hash, hash"
        " FROM ledger_journal WHERE (payer_account = :account OR payee_account = :account)"
        " AND seq > :after ORDER BY seq LIMIT :limit"),
    "payment_requests": (
        "SELECT rowid AS k, id, payer_account, payee_account, amount, memo, listing_id,"
        " status, document, decision, created_at, expires_at, decided_at"
        " FROM ledger_requests WHERE (payer_account = :account OR payee_account = :account)"
        " AND rowid > :after ORDER BY rowid LIMIT :limit"),
    "ious": (
        "SELECT rowid AS k, id, role, state, payer, payee, debit_account, credit_account,"
        " amount, in_amount, out_amount, memo, listing_id, entry_document, reason,"
        " expires_at, created_at, decided_at FROM iou_transfers"
        " WHERE (payer = :actor OR payee = :actor OR debit_account = :account"
        " OR credit_account = :account) AND rowid > :after ORDER BY rowid LIMIT :limit"),
    "notifications": (
        "SELECT id AS k, type, ref, target_url, detail, amount, created_at, read_at"
        " FROM notifications WHERE member_id = :member AND id > :after"
        " ORDER BY id LIMIT :limit"),
    "alerts": (
        "SELECT id AS k, q, kind, category, near, radius_km, max_price, created_at"
        " FROM alerts WHERE member_id = :member AND listing_id IS NULL AND id > :after"
        " ORDER BY id LIMIT :limit"),
    "waiting_lists": (
        "SELECT id AS k, listing_id, state, joined_at, notified_at, confirm_by, deal_id,"
        " updated_at FROM listing_queue WHERE member_id = :member AND id > :after"
        " ORDER BY id LIMIT :limit"),
    "remote_waiting_lists": (
        "SELECT id AS k, listing_id, join_id, state, position, confirm_by, reason, created_at,"
        " updated_at FROM remote_queue_places WHERE member_id = :member AND id > :after"
        " ORDER BY id LIMIT :limit"),
    "email": (
        "SELECT member_id AS k, address, verified_at, enabled, digest, created_at"
        " FROM member_emails WHERE member_id = :member AND member_id > :after LIMIT :limit"),
}


async def account_of(db: aiosqlite.Connection, member_id: int) -> str | None:
    """The ledger account name of a member (None if the member has none)."""
    async with query(db, "SELECT name FROM ledger_accounts WHERE member_id = ?",
                     (member_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else str(row["name"])


async def section_page(db: aiosqlite.Connection, section: str, owner: Owner, *,
                       after: int, limit: int) -> list[dict[str, Any]]:
    """One page of a section's rows (each a dict with its cursor ``k``), in cursor order."""
    params = {"member": owner.member_id, "account": owner.account, "actor": owner.actor,
              "after": after, "limit": limit}
    async with query(db, SECTIONS[section], params) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def remote_ed25519_key(db: aiosqlite.Connection, key_id: str) -> str | None:
    """The cached Ed25519 key (hex) of a remote verification method, or None."""
    async with query(db, "SELECT material FROM remote_keys WHERE key_id = ? AND"
                     " kind = 'ed25519'", (key_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else str(row["material"])
