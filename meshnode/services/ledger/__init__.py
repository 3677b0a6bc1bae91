"""The community's mutual-credit ledger: payments, bills, reversals, admin entries, limits.

Every use case signs its document with the acting member's Ed25519 key *before* taking the
write lock, then checks limits and appends to the journal inside ONE ``store.transaction()``:
the store serialises writers, so no interleaving of concurrent payments can breach a limit.

Modules: ``accounts`` (currency, limits, positions, limit checks, wallet), ``payments``
(member payments; transfers and holds other use cases make in their own transaction),
``requests`` (payment requests), ``admin`` (reversals, admin entries, limit overrides,
journal verification and summary). This package re-exports their public use cases.
"""

from meshnode.services.ledger.accounts import (
    CROSS_COMMUNITY,
    HistoryPage,
    Wallet,
    account_uri,
    currency_terms,
    default_limits,
    effective_limits,
    limit_breach,
    wallet_from,
    wallet_summary,
)
from meshnode.services.ledger.admin import (
    LedgerSummary,
    LedgerVerification,
    NearLimit,
    admin_transfer,
    fund_account,
    ledger_summary,
    reverse,
    set_limits,
    signed_document,
    signing_keys,
    verify_journal,
)
from meshnode.services.ledger.payments import (
    commit_transfer,
    get_transaction,
    history,
    pay,
    place_hold,
    prepare_transfer,
    release_holds,
)
from meshnode.services.ledger.requests import (
    approve_request,
    decline_request,
    expire_requests,
    get_request,
    list_requests,
    request_payment,
)

__all__ = [
    "CROSS_COMMUNITY",
    "HistoryPage",
    "LedgerSummary",
    "LedgerVerification",
    "NearLimit",
    "Wallet",
    "account_uri",
    "admin_transfer",
    "approve_request",
    "commit_transfer",
    "currency_terms",
    "decline_request",
    "default_limits",
    "effective_limits",
    "expire_requests",
    "fund_account",
    "get_request",
    "get_transaction",
    "history",
    "ledger_summary",
    "limit_breach",
    "list_requests",
    "pay",
    "place_hold",
    "prepare_transfer",
    "release_holds",
    "request_payment",
    "reverse",
    "set_limits",
    "signed_document",
    "signing_keys",
    "verify_journal",
    "wallet_from",
    "wallet_summary",
]
