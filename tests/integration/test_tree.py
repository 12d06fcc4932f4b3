"""The stored Merkle tree: kept in step by appends, answering roots and proofs without
a rebuild, on both backends; checked against a from-scratch RFC 9162 computation."""

from __future__ import annotations

import random

from ledger import Settings
from ledger.merkle import (
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.tree import TILE_WIDTH
from tests.conftest import make_events
from tests.support.attacker import Attacker


def _append_in_batches(store: ChainStore, sizes: list[int]) -> None:
    recorder = ChainedApplicationRecorder(store)
    events = make_events(sum(sizes), size=8)
    start = 0
    for size in sizes:
        recorder.insert_events(events[start : start + size])
        start += size


def _leaves(store: ChainStore) -> list[bytes]:
    last = store.max_position()
    return [] if last is None else [leaf_hash(h) for h in store.stored_hashes(0, 0, last + 1)]


def test_roots_and_proofs_match_a_rebuild(store: ChainStore) -> None:
    # Batches that start and end inside, on and across 256-event tile boundaries.
    _append_in_batches(store, [1, 7, 248, 300, 255, 1, 513, 2])
    leaves = _leaves(store)
    size = len(leaves)
    assert size == 1327
    assert store.stored_hashes(8, 0, 10) == [
        root_from_leaf_hashes(leaves[i * TILE_WIDTH : (i + 1) * TILE_WIDTH])
        for i in range(size // TILE_WIDTH)
    ]
    rng = random.Random(5)
    sizes = [0, 1, 2, 255, 256, 257, 511, 512, 513, size, *rng.sample(range(1, size), 25)]
    for n in sizes:
        assert store.tree_root(n) == root_from_leaf_hashes(leaves[:n]), n
    for n in [1, 256, 300, size]:
        root = store.tree_root(n)
        for index in {0, n - 1, n // 2, *rng.sample(range(n), min(n, 10))}:
            verify_inclusion(index, n, leaves[index], store.inclusion_proof(index, n), root)
    for old, new in [(1, size), (256, 257), (300, 1027), (1000, size), (size, size)]:
        verify_consistency(
            old, new, store.tree_root(old), store.tree_root(new), store.consistency_proof(old, new)
        )


def test_a_second_tree_level_is_stored_past_65536_events(store: ChainStore) -> None:
    _append_in_batches(store, [5_000] * 14)  # 70,000 events
    leaves = _leaves(store)
    level_16 = store.stored_hashes(16, 0, 2)
    assert level_16 == [root_from_leaf_hashes(leaves[: 1 << 16])]
    assert store.tree_root(70_000) == root_from_leaf_hashes(leaves)
    index = 65_537
    verify_inclusion(
        index, 70_000, leaves[index], store.inclusion_proof(index, 70_000), store.tree_root(70_000)
    )


def test_backfill_restores_the_tree_of_an_older_log(url: str, store: ChainStore) -> None:
    _append_in_batches(store, [700, 100])
    before = store.stored_hashes(8, 0, 10)
    assert len(before) == 3
    # A log recorded before the tree existed: no nodes. Backfill recreates them.
    intruder = Attacker(url)
    intruder.run("DELETE FROM ledger_tree_nodes")
    intruder.close()
    assert store.stored_hashes(8, 0, 10) == []
    assert store.backfill_tree() == 3
    assert store.stored_hashes(8, 0, 10) == before
    assert store.backfill_tree() == 0
    assert store.tree_root(800) == root_from_leaf_hashes(_leaves(store))


def test_verify_still_sees_the_chain(url: str, store: ChainStore) -> None:
    from ledger.verify import verify_ledger

    _append_in_batches(store, [600])
    assert verify_ledger(Settings(database_url=url)).checked == 600
