"""Proofs benchmark: what the stored Merkle tree costs appends, and how fast it answers.

A benchmark, never a timed test: it is run by hand (or by CI as an informational
job) and its figures depend on the machine. Nothing in ``tests/`` asserts on speed.

One run, on one PostgreSQL server, in two fresh databases
``regledger_bench_proofs_tree`` and ``regledger_bench_proofs_notree`` (dropped and
recreated from the admin DSN, other connections to them terminated first, both
migrated with ``store.migrate()``, both dropped again at the end):

* ``append_eps_with_tree`` / ``append_eps_without_tree`` -- ``ChainedApplicationRecorder``
  on ``PostgresChainStore(settings, maintain_tree=True)`` and on one with
  ``maintain_tree=False``, the same N events (``--events``, 5 per aggregate, ~250-byte
  JSON order states, from ``bench/ingest.py``'s seeded ``EventFactory``) in batches
  of ``--batch``, interleaved batch by batch in rotating order, each batch timed on
  its own with ``time.perf_counter`` after two untimed warm-up batches per store;
  ``tree_overhead = 1 - with / without``;
* ``proof_p50_ms`` / ``proof_p99_ms`` / ``proof_max_ms`` -- the with-tree log is grown
  (untimed, through the chained recorder, batches of 5,000) to ``--proof-log`` events
  (default 1,000,000); then ``store.inclusion_proof(index, M)`` is timed for 2,000
  seeded random indexes (after 20 untimed warm-up proofs), and each proof is checked
  with ``ledger.merkle.verify_inclusion`` against ``store.tree_root(M)`` (untimed);
* ``root_ms`` -- ``store.tree_root(M)``, median of 20; the root is also checked once
  (untimed) against a full rebuild from all M event hashes;
* ``consistency_p50_ms`` / ``consistency_p99_ms`` -- ``store.consistency_proof(old, M)``
  for 500 seeded random ``old`` sizes, each checked with ``verify_consistency`` (untimed);
* ``bundle_verify_eps`` -- events per second ``ledger.bundle.verify_bundle`` (the
  offline verifier) checks in a bundle of the last ``BUNDLE_EVENTS`` events of the
  proof log, exported against a freshly signed checkpoint: file hashes, signature,
  every event hash and link, every inclusion proof.

Targets: ``tree_overhead <= 0.15`` (appends at most 15 % slower with the tree);
``proof_p50_ms <= 2``.

Usage::

    python bench/proofs.py [--events 200000] [--proof-log 1000000] [--batch 500] \\
        [--dsn ADMIN_DSN] [--json]

``--dsn`` defaults to ``$REGLEDGER_TEST_DSN``, else
``postgresql://postgres@127.0.0.1:5432/postgres``. With ``--json`` exactly one JSON
object goes to stdout; progress and the table go to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository and bench/ importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from common import (
    Contender,
    add_dsn_option,
    db_url,
    drop_databases,
    progress_bar,
    recreate_databases,
)
from ingest import EventFactory, batches
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger import Settings
from ledger.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.postgres import PostgresChainStore
from ledger.recorders import ChainedApplicationRecorder

BENCH_DB = "regledger_bench_proofs"
TREE_DB = f"{BENCH_DB}_tree"
NOTREE_DB = f"{BENCH_DB}_notree"
WARMUP_BATCHES = 2
SEED = 20_260_202
MAX_EVENT_BYTES = 1_048_576
GROW_BATCH = 5_000
BUNDLE_EVENTS = 20_000
PROOFS = 2_000
WARMUP_PROOFS = 20
ROOTS = 20
CONSISTENCY_PROOFS = 500

TARGET_TREE_OVERHEAD = 0.15
TARGET_PROOF_P50_MS = 2.0


# --- database -------------------------------------------------------------------------


# --- measuring ------------------------------------------------------------------------


def eps(self) -> float:
    return self.events / self.seconds if self.seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in (0, 100]) of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds taken by ``call()``, and its result."""
    started = time.perf_counter()
    value = call()
    return (time.perf_counter() - started) * 1000, value


def measure_bundle(store: Any, count: int) -> dict[str, Any]:
    """Sign a checkpoint, export the last ``count`` events, time the offline verification."""
    import tempfile

    from ledger.bundle import export_bundle, verify_bundle
    from ledger.checkpointing import issue_checkpoint
    from ledger.keys import generate

    signer = generate("regledger.bench/ledger")
    note = issue_checkpoint(store, signer, "regledger.bench/ledger")
    size = (store.max_position() or 0) + 1
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/bundle.zip"
        export_bundle(
            store, path, checkpoint_note=note, verifier=signer.verifier(),
            first=size - count, last=size - 1,
        )  # fmt: skip
        started = time.perf_counter()
        verify_bundle(path, signer.verifier().encode(), echo=lambda _line: None)
        seconds = time.perf_counter() - started
    return {
        "bundle_verify_eps": round(count / seconds),
        "bundle": f"{count:,} events from a {size:,}-event log",
    }


# --- run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    wall_started = time.perf_counter()
    n, size, m = args.events, args.batch, args.proof_log
    tree_url, notree_url = db_url(args.dsn, TREE_DB), db_url(args.dsn, NOTREE_DB)

    console.log(f"generating {n:,} + warm-up events (seed {SEED})")
    factory = EventFactory(SEED)
    grow_factory = EventFactory(SEED + 1)  # more events for the proof log, untimed
    warm_events = factory.events(WARMUP_BATCHES * size)
    timed_events = factory.events(n)
    state_bytes = sum(len(e.state) for e in timed_events) / max(n, 1)
    warm_batches, timed_batches = batches(warm_events, size), batches(timed_events, size)

    postgres_version = recreate_databases(args.dsn, (TREE_DB, NOTREE_DB))
    console.log(f"databases {TREE_DB}, {NOTREE_DB} created on PostgreSQL {postgres_version}")

    tree_store: PostgresChainStore | None = None
    notree_store: PostgresChainStore | None = None
    try:
        tree_store = PostgresChainStore(Settings(database_url=tree_url), maintain_tree=True)
        notree_store = PostgresChainStore(Settings(database_url=notree_url), maintain_tree=False)
        tree_store.migrate()
        notree_store.migrate()
        with_tree = ChainedApplicationRecorder(tree_store, max_event_bytes=MAX_EVENT_BYTES)
        without_tree = ChainedApplicationRecorder(notree_store, max_event_bytes=MAX_EVENT_BYTES)

        # Warm-up, untimed: connections, prepared statements, the topic cache.
        for batch in warm_batches:
            with_tree.insert_events(batch)
            without_tree.insert_events(batch)

        contenders = [
            Contender("with tree", lambda i: with_tree.insert_events(timed_batches[i])),
            Contender("without tree", lambda i: without_tree.insert_events(timed_batches[i])),
        ]
        perf = time.perf_counter
        with progress_bar(console) as progress:
            task = progress.add_task("batches (with tree, without)", total=len(timed_batches))
            for i, batch in enumerate(timed_batches):
                for k in range(len(contenders)):  # rotate the order batch by batch
                    contender = contenders[(i + k) % len(contenders)]
                    started = perf()
                    contender.insert(i)
                    contender.seconds += perf() - started
                    contender.events += len(batch)
                progress.advance(task)
            notree_store.close()
            notree_store = None

            logged = len(warm_events) + n
            grow = max(0, m - logged)
            task = progress.add_task("grow the tree log (untimed)", total=grow)
            for start in range(0, grow, GROW_BATCH):
                count = min(GROW_BATCH, grow - start)
                with_tree.insert_events(grow_factory.events(count))
                progress.advance(task, count)

        store = tree_store
        last = store.max_position()
        assert last is not None and last + 1 >= m, (last, m)

        console.log(f"checking the stored tree against a rebuild from {m:,} event hashes")
        root = store.tree_root(m)
        rebuilt = root_from_leaf_hashes([leaf_hash(h) for h in store.stored_hashes(0, 0, m)])
        assert root == rebuilt, "the stored tree's root differs from a full rebuild"

        rng = random.Random(SEED)
        for index in rng.sample(range(m), WARMUP_PROOFS):  # prepared statements, caches
            store.inclusion_proof(index, m)

        proof_ms: list[float] = []
        with progress_bar(console) as progress:
            task = progress.add_task("inclusion proofs", total=PROOFS)
            for index in (rng.randrange(m) for _ in range(PROOFS)):
                ms, proof = timed(lambda index=index: store.inclusion_proof(index, m))
                proof_ms.append(ms)
                record = store.record_at(index)
                assert record is not None, index
                verify_inclusion(index, m, leaf_hash(record.hash), proof, root)
                progress.advance(task)

            root_ms = [timed(lambda: store.tree_root(m))[0] for _ in range(ROOTS)]

            consistency_ms: list[float] = []
            task = progress.add_task("consistency proofs", total=CONSISTENCY_PROOFS)
            for old in (rng.randrange(1, m) for _ in range(CONSISTENCY_PROOFS)):
                ms, proof = timed(lambda old=old: store.consistency_proof(old, m))
                consistency_ms.append(ms)
                verify_consistency(old, m, store.tree_root(old), root, proof)
                progress.advance(task)

            task = progress.add_task("bundle: export and verify", total=None)
            bundle = measure_bundle(store, BUNDLE_EVENTS)
            progress.update(task, completed=1, total=1)
    finally:
        if tree_store is not None:
            tree_store.close()
        if notree_store is not None:
            notree_store.close()

    with_c, without_c = contenders
    overhead = 1 - with_c.eps / without_c.eps if without_c.eps > 0 else 0.0
    proof_ms.sort()
    consistency_ms.sort()
    proof_p50 = statistics.median(proof_ms)
    result: dict[str, Any] = {
        "append_eps_with_tree": round(with_c.eps),
        "append_eps_without_tree": round(without_c.eps),
        "tree_overhead": round(overhead, 3),
        "proof_p50_ms": round(proof_p50, 3),
        "proof_p99_ms": round(percentile(proof_ms, 99), 3),
        "proof_max_ms": round(proof_ms[-1], 3),
        "root_ms": round(statistics.median(root_ms), 3),
        "consistency_p50_ms": round(statistics.median(consistency_ms), 3),
        "consistency_p99_ms": round(percentile(consistency_ms, 99), 3),
        **bundle,
        "events": n,
        "proof_log_events": m,
        "batch": size,
        "warmup_events": len(warm_events),
        "proofs": PROOFS,
        "consistency_proofs": CONSISTENCY_PROOFS,
        "mean_state_bytes": round(state_bytes),
        "seconds": {
            "append_with_tree": round(with_c.seconds, 3),
            "append_without_tree": round(without_c.seconds, 3),
        },
        "targets_met": {
            "tree_overhead": overhead <= TARGET_TREE_OVERHEAD,
            "proof_p50_ms": proof_p50 <= TARGET_PROOF_P50_MS,
        },
        "cpus": os.cpu_count(),
        "postgres_version": postgres_version,
        "python": platform.python_version(),
        "wall_s": round(time.perf_counter() - wall_started, 1),
    }
    _print_table(console, contenders, result)
    return result


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_table(console: Console, contenders: list[Contender], result: dict[str, Any]) -> None:
    table = Table(
        title=(
            f"regledger proofs, batch {result['batch']}, proof log "
            f"{result['proof_log_events']:,}, PostgreSQL {result['postgres_version']}"
        )
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    met = result["targets_met"]

    def mark(key: str) -> str:
        return "met" if met[key] else "NOT MET"

    for c in contenders:
        table.add_row(
            f"append {c.name} ({c.events:,} events, {c.seconds:.3f} s)", f"{c.eps:,.0f} ev/s", ""
        )
    table.add_row(
        "tree overhead (1 - with / without)",
        f"{result['tree_overhead']:.1%}",
        f"<= {TARGET_TREE_OVERHEAD:.0%}, {mark('tree_overhead')}",
    )
    table.add_row(
        f"inclusion proof p50 ({result['proofs']:,} proofs)",
        f"{result['proof_p50_ms']:.3f} ms",
        f"<= {TARGET_PROOF_P50_MS:g} ms, {mark('proof_p50_ms')}",
    )
    table.add_row("inclusion proof p99", f"{result['proof_p99_ms']:.3f} ms", "")
    table.add_row("inclusion proof max", f"{result['proof_max_ms']:.3f} ms", "")
    table.add_row(f"tree root (median of {ROOTS})", f"{result['root_ms']:.3f} ms", "")
    table.add_row(
        f"consistency proof p50 ({result['consistency_proofs']:,} proofs)",
        f"{result['consistency_p50_ms']:.3f} ms",
        "",
    )
    table.add_row("consistency proof p99", f"{result['consistency_p99_ms']:.3f} ms", "")
    eps = result["bundle_verify_eps"]
    table.add_row("bundle verify", "n/a" if eps is None else f"{eps:,} ev/s", result["bundle"])
    console.print(table)


def _summary(result: dict[str, Any]) -> str:
    met = result["targets_met"]

    def mark(key: str) -> str:
        return "ok" if met[key] else "MISSED"

    return (
        f"appends {result['append_eps_with_tree']:,} ev/s with the tree, "
        f"{result['append_eps_without_tree']:,} without: overhead "
        f"{result['tree_overhead']:.1%} [{mark('tree_overhead')}]; inclusion proof in "
        f"{result['proof_log_events']:,} p50 {result['proof_p50_ms']} ms "
        f"[{mark('proof_p50_ms')}], p99 {result['proof_p99_ms']} ms; root "
        f"{result['root_ms']} ms; consistency p50 {result['consistency_p50_ms']} ms; "
        f"bundle {result['bundle']}; {result['wall_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per store, timed")
    parser.add_argument("--batch", type=int, default=500, help="events per insert_events call")
    parser.add_argument(
        "--proof-log",
        type=int,
        default=1_000_000,
        help="log size proofs are timed on (the with-tree log is grown, untimed)",
    )
    add_dsn_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch < 1 or args.proof_log < 2:
        parser.error("--events and --batch must be positive, --proof-log at least 2")

    console = Console(stderr=True) if args.json else Console()
    try:
        result = run(args, console)
    finally:
        try:
            drop_databases(args.dsn, (TREE_DB, NOTREE_DB))
        except psycopg.Error as exc:
            Console(stderr=True).print(f"[red]could not drop the bench databases: {exc}[/red]")
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    console.print(_summary(result), markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
