"""The Merkle tree over the log, answered from stored tiles instead of a rebuild.

Only nodes at levels 8, 16, 24, ... are stored (``ledger_tree_nodes``): node
``(level, idx)`` is the root of the perfect subtree over leaves
``[idx << level, (idx + 1) << level)``. Level 0 is the leaf hashes, derived from the
event hashes. Any perfect subtree of height ``h`` is folded from at most 255 hashes
of level ``8 * (h // 8)``, so a root or a proof in a log of 10 million events
reads a few tiles. Appends store the nodes their batch completes, in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from .merkle import (
    EMPTY_ROOT,
    SubtreeRoot,
    consistency_proof_from,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    subtree_root_from_perfect_nodes,
)

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "CachedLevels",
    "Levels",
    "OverlayLevels",
    "completed_nodes",
    "consistency_proof",
    "inclusion_proof",
    "subtree_root",
    "tree_root",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

Node = tuple[int, int, bytes]  # (level, idx, hash)


class Levels(Protocol):
    """Hashes of one level of the tree: level 0 leaf hashes, levels 8k stored nodes."""

    def level_hashes(self, level: int, start: int, end: int) -> Sequence[bytes]:
        """The hashes at ``level`` for indexes ``[start, end)``, all present."""
        ...


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its 2^k lowest-level hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def perfect_root(levels: Levels, start: int, size: int) -> bytes:
    """The root of the perfect subtree over leaves ``[start, start + size)``."""
    height = size.bit_length() - 1
    if size != 1 << height or start % size:
        raise ValueError(f"[{start}, {start + size}) is not an aligned perfect subtree")
    base = (height // TILE_HEIGHT) * TILE_HEIGHT
    first = start >> base
    return _fold(levels.level_hashes(base, first, first + (size >> base)))


def subtree_root(levels: Levels, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` (a node of the RFC 9162 recursion), from tiles."""
    return _subtree_roots(levels)(start, end)


def tree_root(levels: Levels, size: int) -> bytes:
    """The tree head of the first ``size`` events."""
    return EMPTY_ROOT if size == 0 else subtree_root(levels, 0, size)


def inclusion_proof(levels: Levels, index: int, size: int) -> list[bytes]:
    return inclusion_proof_from(index, size, _subtree_roots(levels))


def consistency_proof(levels: Levels, old_size: int, new_size: int) -> list[bytes]:
    return consistency_proof_from(old_size, new_size, _subtree_roots(levels))


def _subtree_roots(levels: Levels) -> SubtreeRoot:
    return subtree_root_from_perfect_nodes(lambda a, b: perfect_root(levels, a, b - a))


def completed_nodes(
    levels: OverlayLevels,
    old_size: int,
    new_size: int,
    *,
    min_level: int = TILE_HEIGHT,
    max_level: int | None = None,
) -> list[Node]:
    """The stored nodes that growing the tree from ``old_size`` to ``new_size`` completes.

    Each is added to ``levels`` as it is made, so the next level up can use it.
    ``min_level``/``max_level`` restrict the levels made (an append makes level 8
    while its COPY runs, when no query can read stored nodes, and the rest after).
    """
    made: list[Node] = []
    level = min_level
    while 1 << level <= new_size and (max_level is None or level <= max_level):
        for idx in range(old_size >> level, new_size >> level):
            below = level - TILE_HEIGHT
            node = _fold(levels.level_hashes(below, idx << TILE_HEIGHT, (idx + 1) << TILE_HEIGHT))
            levels.add(level, idx, node)
            made.append((level, idx, node))
        level += TILE_HEIGHT
    return made


class CachedLevels:
    """Levels read from a store one whole tile at a time, each tile read once."""

    def __init__(self, fetch: Callable[[int, int, int], Sequence[bytes]]) -> None:
        self._fetch = fetch  # (level, start, end) -> hashes as stored (level 0: event hashes)
        self._tiles: dict[tuple[int, int], Sequence[bytes]] = {}

    def _tile(self, level: int, tile: int) -> Sequence[bytes]:
        key = (level, tile)
        if key not in self._tiles:
            raw = self._fetch(level, tile * TILE_WIDTH, (tile + 1) * TILE_WIDTH)
            self._tiles[key] = [leaf_hash(h) for h in raw] if level == 0 else list(raw)
        return self._tiles[key]

    def level_hashes(self, level: int, start: int, end: int) -> Sequence[bytes]:
        out: list[bytes] = []
        for tile in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
            hashes = self._tile(level, tile)
            base = tile * TILE_WIDTH
            out.extend(hashes[max(start, base) - base : min(end, base + TILE_WIDTH) - base])
        if len(out) != end - start:
            raise LookupError(
                f"level {level} holds {len(out)} of the hashes [{start}, {end}): the stored "
                "tree is incomplete (run `regledger db migrate` to backfill it)"
            )
        return out


class OverlayLevels:
    """Levels as they will be once a batch commits: its hashes over what is stored."""

    def __init__(
        self,
        fetch: Callable[[int, int, int], Sequence[bytes]],
        first_position: int,
        event_hashes: Iterable[bytes],
        open_leaves: Sequence[bytes] = (),
    ) -> None:
        # Leaf hashes from the open block's start on, contiguous: the open block
        # before the batch (given as leaf hashes), then the batch itself.
        self._base = first_position - len(open_leaves)
        self._leaves = list(open_leaves)
        self._leaves += [leaf_hash(h) for h in event_hashes]
        self._nodes: dict[int, dict[int, bytes]] = {}
        self._stored = CachedLevels(fetch)

    def add(self, level: int, idx: int, node: bytes) -> None:
        self._nodes.setdefault(level, {})[idx] = node

    def extend(self, first_position: int, event_hashes: Iterable[bytes]) -> None:
        """More of the batch's event hashes, from ``first_position`` on (in order)."""
        if first_position != self._base + len(self._leaves):
            raise ValueError(f"leaf {first_position} does not follow the ones held")
        self._leaves += [leaf_hash(h) for h in event_hashes]

    def level_hashes(self, level: int, start: int, end: int) -> Sequence[bytes]:
        if level == 0:
            held_from = self._base
            if start >= held_from:
                hashes = self._leaves[start - held_from : end - held_from]
            else:
                stored = list(self._stored.level_hashes(0, start, min(end, held_from)))
                hashes = stored + self._leaves[: max(0, end - held_from)]
            if len(hashes) != end - start:  # a tile is never folded from fewer leaves
                raise LookupError(f"leaves [{start}, {end}) are not all known yet")
            return hashes
        mine = self._nodes.get(level, {})
        ours = [i for i in range(start, end) if i in mine]
        stored_end = ours[0] if ours else end
        stored = (
            list(self._stored.level_hashes(level, start, stored_end)) if stored_end > start else []
        )
        return stored + [mine[i] for i in range(stored_end, end)]
