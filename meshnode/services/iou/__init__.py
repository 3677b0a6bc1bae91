"""IOUs between communities: trust lines and cross-node transfers (use cases).

Every change is rows in ONE write transaction: the line or transfer state, the holds, the
journal entry and the outgoing signed activity (outbox + delivery rows). The running node's
workers send; a restart resumes from the rows (ARCHITECTURE flow 3).

Who decides: the payee's node (``final``) commits or refuses a prepared transfer and records
that decision; every other node applies the decision it receives and ignores anything that
does not fit the transition table (``protocol.iou.TRANSFER_GRAPH``).

Modules: ``common`` (results, the network collaborator, sending), ``lines`` (trust lines),
``routing`` (the way to the payee's community), ``transfers`` (payer, hop and payee nodes),
``reconcile`` (statements). This package re-exports their public use cases.
Entry point for other features (deals): :func:`pay_remote`.
"""

from meshnode.services.iou.common import (
    DEFAULT_EXPIRY,
    EXPIRED,
    Enough,
    IouNetwork,
    TransferStatus,
    line_view,
    node_account_name,
    send,
)
from meshnode.services.iou.lines import (
    accept_line,
    build_offer,
    change_line,
    get_line,
    list_lines,
    our_currency,
    propose_line,
    receive_line_answer,
    receive_line_update,
    receive_offer,
    reject_line,
)
from meshnode.services.iou.reconcile import (
    line_report,
    our_statement,
    queue_statements,
    receive_statement,
)
from meshnode.services.iou.routing import local_edges
from meshnode.services.iou.transfers import (
    get_transfer,
    list_transfers,
    pay_remote,
    pay_remote_payee_amount,
    prepare_origin,
    queue_releases,
    receive_answer,
    receive_prepare,
    receive_release,
)
from meshnode.services.signing import community_actor, node_key_id, sign_as_node

__all__ = [
    "DEFAULT_EXPIRY",
    "EXPIRED",
    "Enough",
    "IouNetwork",
    "TransferStatus",
    "accept_line",
    "build_offer",
    "change_line",
    "community_actor",
    "get_line",
    "get_transfer",
    "line_report",
    "line_view",
    "list_lines",
    "list_transfers",
    "local_edges",
    "node_account_name",
    "node_key_id",
    "our_currency",
    "our_statement",
    "pay_remote",
    "pay_remote_payee_amount",
    "prepare_origin",
    "propose_line",
    "queue_releases",
    "queue_statements",
    "receive_answer",
    "receive_line_answer",
    "receive_line_update",
    "receive_offer",
    "receive_prepare",
    "receive_release",
    "receive_statement",
    "reject_line",
    "send",
    "sign_as_node",
]
