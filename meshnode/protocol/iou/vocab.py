"""The IOU vocabulary: extension terms defined inline in the ``@context`` (REFERENCE §3: a
peer must never have to fetch an unknown context URL), activity types and size caps."""

from __future__ import annotations

from typing import Any, Final

from meshnode.protocol.vocab import AS_CONTEXT, DATA_INTEGRITY_CONTEXT, MESHNODE_NS

IOU_TERMS: dict[str, Any] = {
    "mn": MESHNODE_NS,
    "TrustLine": "mn:TrustLine",
    "TrustLineOffer": "mn:TrustLineOffer",
    "TrustLineAccept": "mn:TrustLineAccept",
    "TrustLineReject": "mn:TrustLineReject",
    "TrustLineUpdate": "mn:TrustLineUpdate",
    "LineStatement": "mn:LineStatement",
    "IouPrepare": "mn:IouPrepare",
    "IouCommit": "mn:IouCommit",
    "IouReject": "mn:IouReject",
    "IouRelease": "mn:IouRelease",
    "proposer": {"@id": "mn:proposer", "@type": "@id"},
    "acceptor": {"@id": "mn:acceptor", "@type": "@id"},
    "proposerCurrency": "mn:proposerCurrency",
    "acceptorCurrency": "mn:acceptorCurrency",
    "limitProposerOwes": "mn:limitProposerOwes",
    "limitAcceptorOwes": "mn:limitAcceptorOwes",
    "rate": "mn:rate",
    "line": "mn:line",
    "transfer": "mn:transfer",
    "amount": "mn:amount",
    "sourceAmount": "mn:sourceAmount",
    "amounts": {"@id": "mn:amounts", "@container": "@list"},
    "moves": {"@id": "mn:moves", "@container": "@list"},
    "route": {"@id": "mn:route", "@container": "@list", "@type": "@id"},
    "payee": {"@id": "mn:payee", "@type": "@id"},
    "payer": {"@id": "mn:payer", "@type": "@id"},
    "memo": "mn:memo",
    "reason": "mn:reason",
    "expires": "mn:expires",
    "change": "mn:change",
    "balance": "mn:balance",
    "peerBalance": "mn:peerBalance",
    "transfers": "mn:transfers",
    "decimals": "mn:decimals",
    "symbol": "mn:symbol",
    "partOf": "as:partOf",
}
IOU_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, IOU_TERMS]

LINE_TYPES: Final = ("TrustLineOffer", "TrustLineAccept", "TrustLineReject", "TrustLineUpdate",
                     "LineStatement")
TRANSFER_TYPES: Final = ("IouPrepare", "IouCommit", "IouReject", "IouRelease")
LINE_STATES: Final = ("proposed", "pending", "active", "rejected", "frozen", "closed")
LINE_CHANGES: Final = ("freeze", "unfreeze", "close", "limits")
MAX_HOPS: Final = 4
MAX_REASON = 300
MAX_ROUTE = MAX_HOPS + 1
RATE_MAX_DIGITS = 18
