"""IOUs between communities: trust lines, transfer messages, conversion, routing (pure).

REFERENCE.md §6: each pair of communities keeps an account for the other on its own ledger,
agrees a limit each way and a conversion rate; a payment across communities is prepared on
every hop of a path of such lines, then committed everywhere or released everywhere.

Wire format: ActivityPub-style activities whose extension terms are defined inline in the
``@context`` (REFERENCE §3: a peer must never have to fetch an unknown context URL), each
signed by the acting node's Group actor with an FEP-8b32 ``eddsa-jcs-2022`` proof.

Roles of a transfer on one node: ``origin`` (the payer's node), ``hop`` (an intermediate
node) and ``final`` (the payee's node). Only the final node *decides*; every other node
applies the decision it is sent, so a late or repeated message can never apply a transfer
twice or apply it after it was released (see :data:`TRANSFER_GRAPH`).

Modules: ``vocab`` (context, types, caps), ``fields`` (field readers), ``states`` (transfer
and trust-line state machines), ``rates`` (conversion), ``lines`` (agreements, updates),
``messages`` (transfer messages), ``reconcile`` (statements), ``routing`` (path finding).
This package re-exports their public names.
"""

from meshnode.protocol.iou.fields import (
    decimal_units,
    ident_field,
    positive_units,
    signed_int,
    text_field,
)
from meshnode.protocol.iou.lines import (
    Currency,
    LineTerms,
    build_agreement,
    build_line_answer,
    build_line_update,
    cosign,
    parse_agreement,
    parse_currency,
    proof_methods,
    verify_proofs,
)
from meshnode.protocol.iou.messages import (
    Answer,
    PrepareTerms,
    build_answer,
    build_prepare,
    next_hop,
    parse_answer,
    parse_prepare,
    previous_hop,
    transfer_activity_id,
)
from meshnode.protocol.iou.rates import (
    RATE_CONTEXT,
    LineView,
    convert,
    convert_back,
    parse_rate,
    payee_amounts,
)
from meshnode.protocol.iou.reconcile import (
    MAX_STATEMENT_MOVES,
    Reconciliation,
    Statement,
    build_statement,
    parse_statement,
    reconcile,
)
from meshnode.protocol.iou.routing import (
    Edge,
    Route,
    choose_route,
    choose_route_for_payee,
    find_routes,
)
from meshnode.protocol.iou.states import (
    FINAL_STATES,
    LINE_GRAPH,
    OPEN_LINE_STATES,
    TRANSFER_GRAPH,
    TRANSFER_STATES,
    is_expired_at,
    next_line_state,
    next_state,
)
from meshnode.protocol.iou.vocab import (
    IOU_CONTEXT,
    IOU_TERMS,
    LINE_CHANGES,
    LINE_STATES,
    LINE_TYPES,
    MAX_HOPS,
    MAX_REASON,
    MAX_ROUTE,
    RATE_MAX_DIGITS,
    TRANSFER_TYPES,
)

__all__ = [
    "FINAL_STATES",
    "IOU_CONTEXT",
    "IOU_TERMS",
    "LINE_CHANGES",
    "LINE_GRAPH",
    "LINE_STATES",
    "LINE_TYPES",
    "MAX_HOPS",
    "MAX_REASON",
    "MAX_ROUTE",
    "MAX_STATEMENT_MOVES",
    "OPEN_LINE_STATES",
    "RATE_CONTEXT",
    "RATE_MAX_DIGITS",
    "TRANSFER_GRAPH",
    "TRANSFER_STATES",
    "TRANSFER_TYPES",
    "Answer",
    "Currency",
    "Edge",
    "LineTerms",
    "LineView",
    "PrepareTerms",
    "Reconciliation",
    "Route",
    "Statement",
    "build_agreement",
    "build_answer",
    "build_line_answer",
    "build_line_update",
    "build_prepare",
    "build_statement",
    "choose_route",
    "choose_route_for_payee",
    "convert",
    "convert_back",
    "cosign",
    "decimal_units",
    "find_routes",
    "ident_field",
    "is_expired_at",
    "next_hop",
    "next_line_state",
    "next_state",
    "parse_agreement",
    "parse_answer",
    "parse_currency",
    "parse_prepare",
    "parse_rate",
    "parse_statement",
    "payee_amounts",
    "positive_units",
    "previous_hop",
    "proof_methods",
    "reconcile",
    "signed_int",
    "text_field",
    "transfer_activity_id",
    "verify_proofs",
]
