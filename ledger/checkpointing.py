"""Issuing signed checkpoints, and checking a ledger against one.

A checkpoint is signed only after the ledger proves it consistent with the last
one it issued (RFC 9162 consistency proof): the ledger never signs two
inconsistent checkpoints. Checking against a checkpoint recomputes the tree root
from the event hashes themselves, not from stored tiles, so it catches a cut-off
tail and a rewritten chain that the hash chain alone cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import merkle, tree
from .checkpoint import Checkpoint, sign_checkpoint, split_note, verify_checkpoint
from .errors import LedgerError
from .keys import SignerKey, VerifierKey
from .store import ChainStore

__all__ = [
    "CheckpointMismatch",
    "InconsistentCheckpointError",
    "RootBuilder",
    "check_against",
    "issue_checkpoint",
]

_PAGE = 65_536


class InconsistentCheckpointError(LedgerError):
    """The ledger no longer extends the last checkpoint it issued; nothing was signed."""


class RootBuilder:
    """The RFC 9162 root of a stream of leaf hashes, in O(log n) memory.

    >>> b = RootBuilder(); [b.add(merkle.leaf_hash(bytes([i]))) for i in range(3)] and None
    >>> b.root() == merkle.root([bytes([0]), bytes([1]), bytes([2])])
    True
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, root) of perfect subtrees
        self.size = 0

    def add(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            node = merkle.node_hash(self._stack.pop()[1], node)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        return merkle.root_from_subtree_roots([node for _, node in self._stack])


def issue_checkpoint(store: ChainStore, signer: SignerKey, origin: str) -> str:
    """Sign and store a checkpoint of the whole log; return the signed note.

    Refuses (``InconsistentCheckpointError``) when the log is shorter than the last
    checkpoint, when its first events no longer hash to that checkpoint's root, or
    when stored tree tiles of the new events do not match the events.
    """
    last = store.max_position()
    size = 0 if last is None else last + 1
    previous_note = store.latest_checkpoint()
    previous = None if previous_note is None else Checkpoint.parse(split_note(previous_note)[0])
    start = 0
    if previous is not None:
        if previous.origin != origin:
            raise InconsistentCheckpointError(
                f"the last checkpoint is for origin {previous.origin!r}, not {origin!r}; "
                "set REGLEDGER_LOG_ORIGIN to the log's origin"
            )
        if previous.size > size:
            raise InconsistentCheckpointError(
                f"the log holds {size:,} events but a checkpoint of {previous.size:,} was "
                "issued: events were removed; nothing was signed"
            )
        start = previous.size
    _check_new_tiles(store, start, size)
    root = store.tree_root(size)
    if previous is not None:
        try:
            merkle.verify_consistency(
                previous.size,
                size,
                previous.root,
                root,
                store.consistency_proof(previous.size, size),
            )
        except merkle.ProofError as exc:
            raise InconsistentCheckpointError(
                f"the first {previous.size:,} events no longer hash to the root signed at that "
                f"size ({exc}); the log was rewritten: nothing was signed"
            ) from exc
    note = sign_checkpoint(Checkpoint(origin, size, root), [signer])
    store.record_checkpoint(size, root, note)
    return note


def _check_new_tiles(store: ChainStore, start: int, size: int) -> None:
    """Stored level-8 tiles over events [start, size) must be those events' roots."""
    first_tile = start // tree.TILE_WIDTH
    last_tile = size // tree.TILE_WIDTH
    for tile in range(first_tile, last_tile):
        hashes = store.stored_hashes(0, tile * tree.TILE_WIDTH, (tile + 1) * tree.TILE_WIDTH)
        stored = store.stored_hashes(tree.TILE_HEIGHT, tile, tile + 1)
        computed = merkle.root_from_leaf_hashes([merkle.leaf_hash(h) for h in hashes])
        if stored != [computed]:
            raise InconsistentCheckpointError(
                f"stored tree node (level 8, index {tile}) does not match events "
                f"{tile * tree.TILE_WIDTH}..{(tile + 1) * tree.TILE_WIDTH - 1}; run "
                "`regledger verify`; nothing was signed"
            )


@dataclass(frozen=True)
class CheckpointMismatch:
    """Why a ledger does not match a signed checkpoint."""

    kind: str  # "truncated" or "rewritten"
    detail: str


def check_against(
    store: ChainStore, note: str, verifiers: Iterable[VerifierKey], origin: str | None = None
) -> tuple[Checkpoint, CheckpointMismatch | None]:
    """Check the ledger holds the tree a signed checkpoint commits to.

    The signature is checked first (``SignatureError`` if no trusted key signed it);
    then the root of the first ``size`` events is recomputed from their hashes.
    """
    checkpoint = verify_checkpoint(note, tuple(verifiers), origin)
    last = store.max_position()
    held = 0 if last is None else last + 1
    if held < checkpoint.size:
        return checkpoint, CheckpointMismatch(
            "truncated",
            f"the log holds {held:,} events but the checkpoint commits to {checkpoint.size:,}: "
            f"events {held}..{checkpoint.size - 1} are missing",
        )
    builder = RootBuilder()
    for start in range(0, checkpoint.size, _PAGE):
        for event_hash in store.stored_hashes(0, start, min(start + _PAGE, checkpoint.size)):
            builder.add(merkle.leaf_hash(event_hash))
    root = builder.root()
    if builder.size != checkpoint.size or root != checkpoint.root:
        return checkpoint, CheckpointMismatch(
            "rewritten",
            f"the first {checkpoint.size:,} events hash to root {root.hex()}, but the "
            f"checkpoint signed {checkpoint.root.hex()}: recorded events were changed",
        )
    return checkpoint, None
