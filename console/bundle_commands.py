"""``regledger export`` and ``regledger verify-bundle``: evidence bundles for regulators.

The group in ``console/cli.py`` adds them with ``cli.add_command(...)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from eventsourcing.persistence import Mapper
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger import LedgerError, open_store
from ledger import offline_verifier as ov
from ledger.bundle import BundleSummary, export_bundle, verify_bundle
from ledger.canonical import datetime_to_micros
from ledger.chain import LedgerRecord
from ledger.checkpoint import SignatureError, split_note
from ledger.keys import KeyFormatError, VerifierKey, signer_from_env, verifiers_from
from ledger.store import ChainStore

from .browse import view
from .errors import CommandError
from .options import load_settings, require_schema, when
from .trail import open_trail

__all__ = ["export_command", "verify_bundle_command"]

err = Console(stderr=True)

# What of browse's decoded view goes into a bundle (the chain fields are there already).
_DECODED = ("event_type", "actor", "occurred_at", "source_event_id", "payload")


def _verifier(key_file: str | None, note: str) -> VerifierKey:
    """The key to embed: from --key (the one that signed the note), else from the signer."""
    if key_file is None:
        try:
            return signer_from_env().verifier()
        except LedgerError:
            raise CommandError(
                "give --key FILE: the log's verifier key (printed by `regledger keys generate`) "
                "to embed in the bundle"
            ) from None
    try:
        keys = verifiers_from(Path(key_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, KeyFormatError) as exc:
        raise CommandError(f"--key {key_file}: {exc}") from None
    try:
        signed = {s.label for s in split_note(note)[1]}
    except SignatureError as exc:
        raise CommandError(f"the checkpoint note is malformed: {exc}") from None
    for key in keys:
        if key.label in signed:
            return key
    raise CommandError(
        f"--key {key_file} holds {', '.join(k.label for k in keys)}, but the checkpoint is "
        f"signed by {', '.join(sorted(signed))}"
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("exporting", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _decoder(mapper: Mapper[UUID]) -> Callable[[LedgerRecord], dict[str, Any]]:
    def decode(record: LedgerRecord) -> dict[str, Any]:
        shown = view(record, mapper).as_json()
        return {key: shown[key] for key in _DECODED}

    return decode


def _latest_checkpoint(store: ChainStore, needed: int | None) -> str:
    latest = getattr(store, "latest_checkpoint", None)
    note = latest() if callable(latest) else None
    if not isinstance(note, str):
        where = "the log" if needed is None else f"position {needed}"
        raise CommandError(f"no signed checkpoint covers {where}; run `regledger checkpoint` first")
    return note


@click.command("export")
@click.option("--from", "first", type=int, default=None, help="First position [default: 0].")
@click.option("--to", "last", type=int, default=None, help="Last position [default: checkpoint's].")
@click.option("--since", default=None, help="Recorded at or after (ISO 8601, with zone).")
@click.option("--until", default=None, help="Recorded at or before (ISO 8601, with zone).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .zip to write.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Signed checkpoint note to prove against [default: the latest issued].",
)
@click.option(
    "--key",
    "key_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Verifier key file to embed [default: from $REGLEDGER_SIGNING_KEY].",
)
def export_command(
    first: int | None,
    last: int | None,
    since: str | None,
    until: str | None,
    out: str,
    checkpoint_file: str | None,
    key_file: str | None,
) -> None:
    """Export an evidence bundle: events, proofs and a signed checkpoint in one zip.

    Select positions (--from/--to) or a time range (--since/--until, which adds the
    last event before and the first after the range, so a reader can check that
    nothing inside it was left out). Each event comes with its RFC 9162 inclusion
    proof against the checkpoint; the zip also holds the verifier key, the format
    document and verify.py, a one-file verifier needing only Python and
    `cryptography`: `python verify.py bundle.zip --key ledger.vkey`.

    Example:

        regledger export --since 2026-03-02T00:00:00Z --until 2026-03-02T23:59:59Z \\
            --key ledger.vkey --out evidence-2026-03-02.zip
    """
    since_at, until_at = when(since, "--since"), when(until, "--until")
    since_us = None if since_at is None else datetime_to_micros(since_at)
    until_us = None if until_at is None else datetime_to_micros(until_at)
    if (since_us is not None or until_us is not None) and (first is not None or last is not None):
        raise CommandError("give positions (--from/--to) or times (--since/--until), not both")
    settings = load_settings()
    require_schema(settings)
    try:
        with open_store(settings) as store:
            if checkpoint_file is not None:
                note = Path(checkpoint_file).read_text(encoding="utf-8")
            else:
                note = _latest_checkpoint(store, last if last is not None else store.max_position())
            verifier = _verifier(key_file, note)
            trail = open_trail(settings)
            try:
                with _progress(err.is_terminal) as progress:
                    summary = export_bundle(
                        store,
                        out,
                        checkpoint_note=note,
                        verifier=verifier,
                        first=first,
                        last=last,
                        since_us=since_us,
                        until_us=until_us,
                        decode=_decoder(trail.mapper),
                        progress=progress,
                    )
            finally:
                trail.close()
    except (LedgerError, OSError, UnicodeDecodeError) as exc:
        raise CommandError(str(exc)) from exc
    click.echo(_summary_line(summary))


def _summary_line(summary: BundleSummary) -> str:
    edges = [
        f"boundary {p}" for p in (summary.boundary_before, summary.boundary_after) if p is not None
    ]
    extra = f" incl. {' and '.join(edges)}" if edges else ""
    return (
        f"exported {summary.events:,} events (positions {summary.first}..{summary.last}{extra}) "
        f"to {summary.path}, {summary.size_bytes:,} bytes, sha256 {summary.sha256[:16]}...; "
        f"proven against checkpoint {summary.origin} size {summary.tree_size:,}"
    )


@click.command("verify-bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", default=None, help="Trusted verifier key: a file, or the key text.")
@click.option("--origin", default=None, help="The log origin the checkpoint must name.")
def verify_bundle_command(bundle: str, key: str | None, origin: str | None) -> None:
    """Verify an evidence bundle offline, as its own verify.py does: no database.

    Checks the archive byte for byte, the manifest's file hashes, the checkpoint's
    signature by the trusted key (--key; without it the bundle's own key is used,
    with a warning), every event's hash and link, every inclusion proof, and that
    the selection is complete. Exit status 0: verified; 1: a check failed (the
    first one is named); 2: usage error.

    Example:

        regledger verify-bundle evidence-2026-03-02.zip --key ledger.vkey
    """
    trusted = None
    if key is not None:
        try:
            trusted = ov.read_key_argument(key)
            ov.parse_keys(trusted)
        except (OSError, UnicodeDecodeError, ov.Failure) as exc:
            raise CommandError(f"--key: {exc}") from exc
    report = verify_bundle(bundle, trusted, origin=origin, echo=click.echo)
    sys.exit(0 if report.ok else 1)
