"""Evidence bundles: a zip a regulator verifies offline (docs/FORMAT.md section 8).

``export_bundle`` streams a selection of events (a position range, or a time range
with its two boundary events) with one RFC 9162 inclusion proof each, against a
signed checkpoint, into a zip that also carries the verifier key, the format
document and ``verify.py`` (a copy of ``ledger/offline_verifier.py``, which needs only
the standard library and ``cryptography``). ``verify_bundle`` runs that same
verifier: it shares no code path with the database.

The archive's files are *stored*, not compressed, and every header field is fixed,
so each byte of the zip is either a checked header field or a byte of a file whose
sha256 the manifest lists: changing any byte makes verification fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

from . import merkle, tree
from . import offline_verifier as ov
from .chain import LedgerRecord
from .checkpoint import CheckpointError, SignatureError, verify_checkpoint
from .errors import LedgerError
from .keys import VerifierKey
from .store import ChainStore

__all__ = [
    "BundleError",
    "BundleReport",
    "BundleSummary",
    "CheckpointMismatchError",
    "export_bundle",
    "format_document",
    "verify_bundle",
    "write_archive",
]

BundleReport = ov.Report
"""What ``verify_bundle`` found: ``ok``, the printed ``lines``, the first ``failure``."""

_PAGE = 1_000

Decode = Callable[[LedgerRecord], dict[str, Any]]
Progress = Callable[[int, int], None]


class BundleError(LedgerError):
    """A bundle cannot be exported: bad selection, checkpoint or ledger; nothing was written."""


class CheckpointMismatchError(BundleError):
    """The checkpoint was not issued by this ledger, or the ledger changed since."""


@dataclass(frozen=True)
class BundleSummary:
    """What was exported: positions ``first..last`` (boundaries included), where to."""

    path: str
    origin: str
    tree_size: int
    first: int
    last: int
    events: int
    in_range: int
    boundary_before: int | None
    boundary_after: int | None
    size_bytes: int
    sha256: str
    format_document: bool


class _Archive:
    """Writes the fixed-layout stored zip ``offline_verifier.read_archive`` accepts."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._entries: list[tuple[bytes, int, int, int]] = []
        self.hashes: dict[str, str] = {}

    def _check(self, value: int, what: str) -> None:
        if value > ov.ZIP_LIMIT:
            raise BundleError(f"the bundle's {what} exceeds 4 GiB; export a smaller range")

    def begin(self, name: str) -> _Member:
        offset = self._file.tell()
        self._check(offset, "size")
        encoded = name.encode("ascii")
        self._file.write(ov.local_header(encoded, 0, 0))
        return _Member(self, name, encoded, offset)

    def finish(self, member: _Member) -> None:
        self._check(member.size, member.name)
        end = self._file.tell()
        self._file.seek(member.offset)
        self._file.write(ov.local_header(member.encoded, member.crc, member.size))
        self._file.seek(end)
        self._entries.append((member.encoded, member.crc, member.size, member.offset))
        self.hashes[member.name] = member.sha256.hexdigest()

    def add(self, name: str, data: bytes) -> None:
        member = self.begin(name)
        member.write(data)
        self.finish(member)

    def close(self) -> None:
        start = self._file.tell()
        self._check(start, "size")
        for name, crc, size, offset in self._entries:
            self._file.write(ov.central_entry(name, crc, size, offset))
        end = self._file.tell()
        self._file.write(ov.end_record(len(self._entries), end - start, start))


class _Member:
    def __init__(self, archive: _Archive, name: str, encoded: bytes, offset: int) -> None:
        self.archive, self.name, self.encoded, self.offset = archive, name, encoded, offset
        self.crc = 0
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.archive._file.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self.sha256.update(data)


def write_archive(path: str | os.PathLike[str], files: Sequence[tuple[str, bytes]]) -> None:
    """Write ``files`` (name, content), in order, as a bundle-layout zip (tests, tools)."""
    with open(path, "wb") as file:
        archive = _Archive(file)
        for name, data in files:
            archive.add(name, data)
        archive.close()


def format_document() -> bytes | None:
    """docs/FORMAT.md from a source checkout, or ``ledger/_docs/FORMAT.md`` when packaged."""
    source = Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md"
    if source.is_file():
        return source.read_bytes()
    packaged = resources.files("ledger").joinpath("_docs").joinpath("FORMAT.md")
    return packaged.read_bytes() if packaged.is_file() else None


def _verifier_source() -> bytes:
    return resources.files("ledger").joinpath("offline_verifier.py").read_bytes()


def _first_where(store: ChainStore, size: int, test: Callable[[int], bool]) -> int:
    """The lowest position < ``size`` whose recorded_at passes ``test`` (``size`` if none);
    ``test`` is monotone along the log because recorded_at never decreases."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        record = store.record_at(middle)
        if record is None:
            raise BundleError(
                f"position {middle} is missing from the ledger; run `regledger verify`"
            )
        if test(record.recorded_at_us):
            high = middle
        else:
            low = middle + 1
    return low


def _event_line(
    record: LedgerRecord, proof: list[bytes], boundary: bool, decode: Decode | None
) -> bytes:
    decoded: Any = None
    if decode is not None:
        try:
            decoded = decode(record)
        except Exception as exc:  # the event is still evidence; say why it is not readable
            decoded = {"undecodable": f"{type(exc).__name__}: {exc}"}
    line = {
        "position": record.position,
        "recorded_at": ov.iso_time(record.recorded_at_us),
        "recorded_at_us": record.recorded_at_us,
        "originator_id": record.originator_id,
        "originator_version": record.originator_version,
        "topic": record.topic,
        "state_b64": base64.b64encode(record.state).decode("ascii"),
        "prev_hash": bytes(record.prev_hash).hex(),
        "hash": bytes(record.hash).hex(),
        "boundary": boundary,
        "inclusion_proof": [p.hex() for p in proof],
        "decoded": decoded,
    }
    try:
        return (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a decoded value
        return (json.dumps(line, default=str) + "\n").encode("ascii")


def export_bundle(
    store: ChainStore,
    out_path: str | os.PathLike[str],
    *,
    checkpoint_note: str,
    verifier: VerifierKey,
    first: int | None = None,
    last: int | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    decode: Decode | None = None,
    progress: Progress | None = None,
) -> BundleSummary:
    """Export positions ``first..last``, or the events recorded in ``[since_us, until_us]``
    (with the last event before and the first after, flagged ``boundary``), proven
    against ``checkpoint_note`` (signed by ``verifier``), to the zip ``out_path``.

    ``decode(record)`` renders an event's payload for people (ledger/ does not know the
    application's mapper). ``progress(done, total)`` is called as events are written.
    Raises ``BundleError`` (``CheckpointMismatchError`` when the checkpoint's root is not
    this ledger's); nothing is left at ``out_path`` then.
    """
    by_time = since_us is not None or until_us is not None
    if by_time and (first is not None or last is not None):
        raise BundleError("select by positions (first/last) or by time (since/until), not both")
    if since_us is not None and until_us is not None and until_us < since_us:
        raise BundleError("the end of the time range is earlier than its start")
    try:
        checkpoint = verify_checkpoint(checkpoint_note, [verifier])
    except (SignatureError, CheckpointError) as exc:
        raise BundleError(
            f"the checkpoint note does not verify with {verifier.label}: {exc}"
        ) from exc
    size, root = checkpoint.size, checkpoint.root
    if size == 0:
        raise BundleError("the checkpoint covers no events (tree size 0); sign a newer one")
    stored = store.max_position()
    held = 0 if stored is None else stored + 1
    if held < size:
        raise CheckpointMismatchError(
            f"the checkpoint does not match this ledger: it covers {size:,} events, the "
            f"ledger holds {held:,}"
        )
    try:
        ours = store.tree_root(size)
    except LookupError as exc:
        raise BundleError(f"cannot compute this ledger's tree root: {exc}") from exc
    if ours != root:
        raise CheckpointMismatchError(
            f"the checkpoint does not match this ledger: its root for tree size {size:,} is "
            f"{root.hex()}, this ledger's is {ours.hex()}"
        )

    before = after = None
    if by_time:
        low = 0 if since_us is None else _first_where(store, size, lambda t: t >= since_us)
        high = size if until_us is None else _first_where(store, size, lambda t: t > until_us)
        before = low - 1 if low > 0 else None
        after = high if high < size else None
        start = low if before is None else before
        end = high - 1 if after is None else after
        selection: dict[str, object] = {
            "kind": "time",
            "since": None if since_us is None else ov.iso_time(since_us),
            "since_us": since_us,
            "until": None if until_us is None else ov.iso_time(until_us),
            "until_us": until_us,
        }
    else:
        start = 0 if first is None else first
        end = size - 1 if last is None else last
        if start < 0 or start > end:
            raise BundleError(f"positions {start}..{end} are not a range of positions")
        if end >= size:
            raise BundleError(
                f"position {end} is beyond the checkpoint (tree size {size:,}: positions "
                f"0..{size - 1}): no signed checkpoint covers position {end}; run "
                "`regledger checkpoint` first"
            )
        selection = {"kind": "positions", "from": start, "to": end}

    total = end - start + 1
    boundary = (before is not None) + (after is not None)
    document = format_document()
    target = Path(out_path)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb") as file:
            archive = _Archive(file)
            archive.add(ov.CHECKPOINT, checkpoint_note.encode("utf-8"))
            archive.add(ov.KEY, (verifier.encode() + "\n").encode("ascii"))
            member = archive.begin(ov.EVENTS)
            _write_events(
                store,
                member,
                start,
                end,
                size,
                root,
                before,
                after,
                since_us,
                until_us,
                decode,
                progress,
            )
            archive.finish(member)
            if document is not None:
                archive.add(ov.FORMAT_DOC, document)
            archive.add(ov.VERIFIER, _verifier_source())
            manifest = {
                "counts": {"boundary": boundary, "events": total, "in_range": total - boundary},
                "files": dict(archive.hashes),
                "format": ov.BUNDLE_FORMAT,
                "format_document": ov.FORMAT_DOC if document is not None else ov.FORMAT_MISSING,
                "format_version": ov.BUNDLE_VERSION,
                "origin": checkpoint.origin,
                "root": root.hex(),
                "selection": selection,
                "tree_size": size,
                "verifier_key": verifier.label,
            }
            archive.add(ov.MANIFEST, ov.canonical_json(manifest))
            archive.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    data = target.read_bytes()
    return BundleSummary(
        path=str(target),
        origin=checkpoint.origin,
        tree_size=size,
        first=start,
        last=end,
        events=total,
        in_range=total - boundary,
        boundary_before=before,
        boundary_after=after,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        format_document=document is not None,
    )


def _write_events(
    store: ChainStore,
    member: _Member,
    start: int,
    end: int,
    size: int,
    root: bytes,
    before: int | None,
    after: int | None,
    since_us: int | None,
    until_us: int | None,
    decode: Decode | None,
    progress: Progress | None,
) -> None:
    """Stream positions ``start..end`` page by page, each checked and with its proof."""
    position = start
    previous: LedgerRecord | None = None
    broken = "; the ledger is broken: run `regledger verify`"
    while position <= end:
        page = store.select_records(position, end, (), _PAGE)
        if not page:
            raise BundleError(f"position {position} is missing{broken}")
        levels = tree.CachedLevels(store.stored_hashes)  # one page's tiles at a time
        for record in page:
            if record.position != position:
                raise BundleError(f"position {position} is missing{broken}")
            if record.recompute_hash() != record.hash:
                raise BundleError(f"position {position} does not hash to its stored hash{broken}")
            if previous is not None and record.prev_hash != previous.hash:
                raise BundleError(f"position {position} does not link to {position - 1}{broken}")
            t = record.recorded_at_us
            flagged = position in (before, after)
            outside = (since_us is not None and t < since_us) or (
                until_us is not None and t > until_us
            )
            if outside != flagged:
                raise BundleError(f"recorded_at is out of order at position {position}{broken}")
            proof = tree.inclusion_proof(levels, position, size)
            try:
                merkle.verify_inclusion(position, size, merkle.leaf_hash(record.hash), proof, root)
            except merkle.ProofError as exc:
                raise BundleError(
                    f"the stored tree gives a bad proof for {position}: {exc}"
                ) from exc
            member.write(_event_line(record, proof, flagged, decode))
            previous = record
            position += 1
            if progress is not None:
                progress(position - start, end - start + 1)


def verify_bundle(
    path: str | os.PathLike[str],
    trusted_key_text: str | None,
    *,
    origin: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> BundleReport:
    """Verify a bundle exactly as its ``verify.py`` does, without touching any database.

    ``trusted_key_text`` is the verifier key (vkey text) obtained out of band; with None
    the bundle's own key is used and a warning is part of the report.
    """
    return ov.verify(path, trusted_key_text, origin=origin, echo=echo)
