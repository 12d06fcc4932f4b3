#!/usr/bin/env python3
"""Offline verifier of a regledger evidence bundle (docs/FORMAT.md section 8).

One file; it imports only the Python standard library and ``cryptography``, and
trusts neither the ledger's operator nor any database::

    python verify.py bundle.zip [--key KEYFILE_OR_VKEY_TEXT] [--origin ORIGIN]

Checks, in order, stopping at the first failure: the archive's structure, byte for
byte; the sha256 of each file listed in manifest.json; the Ed25519 signature of
checkpoint.note by the trusted key (--key; else the bundled key.vkey, with a
warning); the origin; every event's hash recomputed from its fields (FORMAT.md
section 3); the links between consecutive events; gapless positions; every RFC 9162
inclusion proof against the signed root; and that the selection is complete.
Exit status 0: verified; 1: a check failed; 2: usage error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BUNDLE_FORMAT = "regledger-evidence-bundle"
BUNDLE_VERSION = 1
CHECKPOINT, KEY, EVENTS = "checkpoint.note", "key.vkey", "events.jsonl"
FORMAT_DOC, VERIFIER, MANIFEST = "FORMAT.md", "verify.py", "manifest.json"
FORMAT_MISSING = "not embedded: docs/FORMAT.md was not found when the bundle was made"
KEY_WARNING = "key taken from the bundle: compare it with the one you obtained independently"
Z = bytes(32)


class Failure(Exception):
    """A check failed; the message names the file, the position and what is wrong."""


def member_names(with_format: bool) -> tuple[str, ...]:
    """The archive's files, in the order they are stored."""
    return (CHECKPOINT, KEY, EVENTS, *((FORMAT_DOC,) if with_format else ()), VERIFIER, MANIFEST)


def canonical_json(value: object) -> bytes:
    """The one serialisation manifest.json may have."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def iso_time(micros: int) -> str:
    """``recorded_at_us`` as ISO 8601 UTC with microseconds, e.g. 2026-01-02T03:04:05.678901Z."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- the archive: a zip of stored (uncompressed) files, every header field fixed -----------

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sBBBBHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
_LOCAL_FIELDS = (
    "signature",
    "version needed",
    "flags",
    "method",
    "time",
    "date",
    "CRC-32",
    "compressed size",
    "size",
    "name length",
    "extra length",
)
_CENTRAL_FIELDS = (
    "signature",
    "version made by",
    "host system",
    "version needed",
    "reserved",
    "flags",
    "method",
    "time",
    "date",
    "CRC-32",
    "compressed size",
    "size",
    "name length",
    "extra length",
    "comment length",
    "disk",
    "internal attributes",
    "external attributes",
    "local header offset",
)
_END_FIELDS = (
    "signature",
    "disk",
    "directory disk",
    "entries on this disk",
    "entries",
    "directory size",
    "directory offset",
    "comment length",
)
ZIP_VERSION, ZIP_UNIX, ZIP_TIME, ZIP_DATE = 20, 3, 0, 33  # date 33: 1980-01-01 00:00:00
ZIP_ATTRIBUTES = 0o100644 << 16  # a regular file, rw-r--r--
ZIP_LIMIT = 0xFFFFFFFF  # no ZIP64: sizes and offsets fit 32 bits


def local_header(name: bytes, crc: int, size: int) -> bytes:
    return (
        LOCAL.pack(b"PK\3\4", ZIP_VERSION, 0, 0, ZIP_TIME, ZIP_DATE, crc, size, size, len(name), 0)
        + name
    )


def central_entry(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return (
        CENTRAL.pack(
            b"PK\1\2",
            ZIP_VERSION,
            ZIP_UNIX,
            ZIP_VERSION,
            0,
            0,
            0,
            ZIP_TIME,
            ZIP_DATE,
            crc,
            size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            ZIP_ATTRIBUTES,
            offset,
        )
        + name
    )


def end_record(count: int, directory_size: int, directory_offset: int) -> bytes:
    return END.pack(b"PK\5\6", 0, 0, count, count, directory_size, directory_offset, 0)


def _same(where: str, layout: struct.Struct, names: Sequence[str], got: bytes, want: bytes) -> None:
    if got == want:
        return
    if len(got) < len(want):
        raise Failure(f"{where}: truncated ({len(got)} of {len(want)} bytes)")
    for name, a, b in zip(names, layout.unpack_from(got), layout.unpack_from(want), strict=True):
        if a != b:
            raise Failure(f"{where}: {name} is {a!r}, expected {b!r}")
    raise Failure(f"{where}: file name is {got[layout.size :]!r}, expected {want[layout.size :]!r}")


def read_archive(data: bytes, label: str = "bundle") -> list[tuple[str, bytes]]:
    """The (name, content) of each file, once every byte of the archive is accounted for."""
    bad = f"{label}: the zip archive is corrupt"
    end_at = len(data) - END.size
    if end_at < 0 or data[end_at : end_at + 4] != b"PK\5\6":
        raise Failure(
            f"{bad}: no end-of-central-directory record in its last {END.size} bytes "
            "(not a zip file, truncated, or bytes appended)"
        )
    _, _, _, _, count, dir_size, dir_offset, _ = END.unpack_from(data, end_at)
    _same(
        f"{bad}: end record at offset {end_at}",
        END,
        _END_FIELDS,
        data[end_at:],
        end_record(count, dir_size, dir_offset),
    )
    if dir_offset + dir_size != end_at:
        raise Failure(
            f"{bad}: the central directory ({dir_offset}+{dir_size}) does not end "
            f"where the end record starts ({end_at})"
        )
    entries: list[tuple[bytes, int, int, int]] = []
    at = dir_offset
    for number in range(1, count + 1):
        where = f"{bad}: central directory entry {number} at offset {at}"
        if at + CENTRAL.size > end_at:
            raise Failure(f"{where} runs past the directory")
        fields = CENTRAL.unpack_from(data, at)
        name = data[at + CENTRAL.size : at + CENTRAL.size + fields[12]]
        want = central_entry(name, fields[9], fields[11], fields[18])
        _same(where, CENTRAL, _CENTRAL_FIELDS, data[at : at + len(want)], want)
        entries.append((name, fields[9], fields[11], fields[18]))
        at += len(want)
    if at != end_at:
        raise Failure(f"{bad}: {end_at - at} stray bytes after the {count} directory entries")
    files: list[tuple[str, bytes]] = []
    at = 0
    for number, (name, crc, size, offset) in enumerate(entries, start=1):
        shown = name.decode("ascii", "replace")
        if offset != at:
            raise Failure(
                f"{bad}: entry {number} ({shown}) is said to start at offset {offset}, "
                f"the previous entry ends at {at}"
            )
        want = local_header(name, crc, size)
        where = f"{bad}: local header of entry {number} ({shown}) at offset {at}"
        _same(where, LOCAL, _LOCAL_FIELDS, data[at : at + len(want)], want)
        start = at + len(want)
        content = data[start : start + size]
        if start + size > dir_offset:
            raise Failure(f"{bad}: the data of {shown} runs into the central directory")
        if zlib.crc32(content) != crc:
            raise Failure(
                f"{bad}: the data of {shown} (offsets {start}..{start + size - 1}) has "
                f"CRC-32 {zlib.crc32(content):08x}, its headers say {crc:08x}: the "
                "file was altered or damaged"
            )
        files.append((shown, content))
        at = start + size
    if at != dir_offset:
        raise Failure(f"{bad}: {dir_offset - at} stray bytes before the central directory")
    return files


# --- keys, signed notes, checkpoints (c2sp.org signed-note, tlog-checkpoint) --------------


@dataclass(frozen=True)
class Key:
    """An Ed25519 verifier key: ``<name>+<key ID hex>+<base64(0x01 || public key)>``."""

    name: str
    key_id: bytes
    public: bytes

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"

    def text(self) -> str:
        blob = base64.b64encode(b"\1" + self.public).decode()
        return f"{self.label}+{blob}"


def parse_key(text: str) -> Key:
    parts = text.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3 or not parts[0] or any(c.isspace() or c < " " for c in parts[0]):
        raise Failure(f"verifier key {text[:60]!r}: expected <name>+<key ID>+<base64 key>")
    name, hex_id, blob = parts
    try:
        ident, raw = bytes.fromhex(hex_id), base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error):
        raise Failure(f"verifier key {name}: key ID or key is not hex / base64") from None
    if len(hex_id) != 8 or len(raw) != 33 or raw[0] != 1:
        raise Failure(f"verifier key {name}: not an 8-digit key ID and an Ed25519 (0x01) key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != ident:
        raise Failure(f"verifier key {name}: key ID {hex_id} does not match the public key")
    return Key(name, ident, raw[1:])


def parse_keys(text: str) -> list[Key]:
    """One or more keys separated by whitespace (e.g. old and new during a rotation)."""
    keys = [parse_key(item) for item in text.split()]
    if not keys:
        raise Failure("no verifier key given")
    return keys


def read_key_argument(value: str) -> str:
    """--key: the path of a key file, or the key text itself."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as file:
            return file.read()
    return value


def open_note(note: bytes, keys: Sequence[Key]) -> tuple[str, str]:
    """The note's text and the label of the trusted key whose signature verified."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise Failure(f"{CHECKPOINT}: not valid UTF-8") from None
    if any(c < " " and c != "\n" for c in text):
        raise Failure(f"{CHECKPOINT}: contains a control character other than newline")
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise Failure(f"{CHECKPOINT}: not a signed note (text, blank line, signature lines)")
    body, signed, seen = text[: split + 1], "", []
    for number, line in enumerate(text[split + 2 : -1].split("\n"), start=1):
        name, space, blob = line.removeprefix("\u2014 ").partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error):
            raw = b""
        if not line.startswith("\u2014 ") or not space or len(raw) < 5:
            raise Failure(f"{CHECKPOINT}: signature line {number} is not '\u2014 <name> <base64>'")
        seen.append(f"{name}+{raw[:4].hex()}")
        for key in keys:
            if (key.name, key.key_id) != (name, raw[:4]):
                continue
            try:
                Ed25519PublicKey.from_public_bytes(key.public).verify(raw[4:], body.encode())
            except InvalidSignature:
                raise Failure(
                    f"{CHECKPOINT}: the signature by trusted key {key.label} does not "
                    "verify: the checkpoint was altered"
                ) from None
            signed = signed or key.label
    if not signed:
        raise Failure(
            f"{CHECKPOINT}: not signed by the trusted key "
            f"{', '.join(k.label for k in keys)} (signed by {', '.join(seen)})"
        )
    return body, signed


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a checkpoint note's text."""
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise Failure(f"{CHECKPOINT}: expected origin, tree size, root hash (non-empty lines)")
    origin, size_text, root_text = lines[:3]
    if not size_text.isascii() or not size_text.isdigit() or size_text != str(int(size_text)):
        raise Failure(f"{CHECKPOINT}: tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (ValueError, binascii.Error):
        root = b""
    if len(root) != 32 or base64.b64encode(root).decode() != root_text or int(size_text) >= 2**64:
        raise Failure(f"{CHECKPOINT}: root hash {root_text!r} or tree size out of spec")
    return origin, int(size_text), root


# --- events: canonical encoding (FORMAT.md section 3), RFC 9162 inclusion -----------------


def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def event_hash(
    position: int,
    originator_id: str,
    version: int,
    topic: str,
    state: bytes,
    recorded_at_us: int,
    prev_hash: bytes,
) -> bytes:
    head = b"".join(_frame(struct.pack(">q", n)) for n in (position, version, recorded_at_us))
    body = _frame(originator_id.encode()) + _frame(topic.encode()) + _frame(state)
    return hashlib.sha256(head + body + _frame(prev_hash)).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2; Failure if the proof cannot be one for (index, size)."""
    if not 0 <= index < size:
        raise Failure(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failure("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\1" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\1" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failure("the inclusion proof is too short")
    return r


def _get(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Failure(f"{where}: {key} is missing or not a {kind.__name__}")
    return value


def _hash(text: object, where: str) -> bytes:
    if not isinstance(text, str) or len(text) != 64 or text != text.lower():
        raise Failure(f"{where}: {text!r} is not 64 lowercase hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Failure(f"{where}: {text!r} is not 64 lowercase hex digits") from None


_EVENT_KEYS = {
    "position",
    "recorded_at",
    "recorded_at_us",
    "originator_id",
    "originator_version",
    "topic",
    "state_b64",
    "prev_hash",
    "hash",
    "boundary",
    "inclusion_proof",
    "decoded",
}
_MANIFEST_KEYS = {
    "counts",
    "files",
    "format",
    "format_document",
    "format_version",
    "origin",
    "root",
    "selection",
    "tree_size",
    "verifier_key",
}


@dataclass
class Event:
    position: int
    recorded_at_us: int
    prev_hash: bytes
    hash: bytes
    boundary: bool


def check_event(line: bytes, number: int, size: int, root: bytes) -> Event:
    """One line of events.jsonl: its fields, its recomputed hash and its inclusion proof."""
    where = f"{EVENTS} line {number}"
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"{where}: not a JSON object") from None
    if not isinstance(obj, dict) or set(obj) != _EVENT_KEYS:
        raise Failure(f"{where}: expected exactly the fields {sorted(_EVENT_KEYS)}")
    position = _get(obj, "position", int, where)
    where = f"{EVENTS} line {number} (position {position})"
    if line not in (json.dumps(obj, ensure_ascii=False).encode(), json.dumps(obj).encode()):
        raise Failure(f"{where}: not in canonical form (as Python's json.dumps writes it)")
    version, recorded = (_get(obj, k, int, where) for k in ("originator_version", "recorded_at_us"))
    if (
        not 0 <= position < 2**63
        or not -(2**63) <= min(version, recorded) <= max(version, recorded) < 2**63
    ):
        raise Failure(f"{where}: an integer field is outside the 64-bit range")
    if _get(obj, "recorded_at", str, where) != iso_time(recorded):
        raise Failure(f"{where}: recorded_at {obj['recorded_at']} is not recorded_at_us {recorded}")
    boundary = _get(obj, "boundary", bool, where)
    originator_id, topic = _get(obj, "originator_id", str, where), _get(obj, "topic", str, where)
    state_b64 = _get(obj, "state_b64", str, where)
    try:
        state = base64.b64decode(state_b64, validate=True)
        texts_ok = bool(originator_id.encode() and topic.encode())
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise Failure(f"{where}: state_b64 is not base64, or a text field is not UTF-8") from None
    if base64.b64encode(state).decode() != state_b64 or not texts_ok:
        raise Failure(f"{where}: state_b64 is not canonical base64, or a text field is empty")
    prev_hash, digest = _hash(obj["prev_hash"], where), _hash(obj["hash"], where)
    computed = event_hash(position, originator_id, version, topic, state, recorded, prev_hash)
    if computed != digest:
        raise Failure(
            f"{where}: hash mismatch: the event's fields hash to {computed.hex()}, "
            f"the bundle says {digest.hex()} (FORMAT.md section 3)"
        )
    if position == 0 and prev_hash != Z:
        raise Failure(f"{where}: position 0 must have a prev_hash of 32 zero bytes")
    proof = [
        _hash(p, f"{where}: inclusion_proof") for p in _get(obj, "inclusion_proof", list, where)
    ]
    leaf = hashlib.sha256(b"\0" + digest).digest()
    try:
        calculated = root_from_inclusion_proof(position, size, leaf, proof)
    except Failure as exc:
        raise Failure(f"{where}: {exc}") from None
    if calculated != root:
        raise Failure(
            f"{where}: the inclusion proof gives root {calculated.hex()}, not the "
            f"checkpoint's {root.hex()} (tree size {size})"
        )
    return Event(position, recorded, prev_hash, digest, boundary)


# --- the bundle ----------------------------------------------------------------------------


@dataclass
class Report:
    """What verification found: ``lines`` as printed; ``failure`` is None when ``ok``."""

    ok: bool = False
    lines: list[str] = field(default_factory=list)
    failure: str | None = None
    origin: str | None = None
    tree_size: int | None = None
    events: int = 0
    first: int | None = None
    last: int | None = None
    boundary_before: int | None = None
    boundary_after: int | None = None


def verify(
    bundle: str | os.PathLike[str] | bytes,
    trusted_keys: str | None = None,
    *,
    origin: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Verify a bundle (a path, or the archive's bytes) against ``trusted_keys`` (vkey text);
    with None, the bundled key is used and a warning printed."""
    report = Report()

    def say(line: str) -> None:
        report.lines.append(line)
        if echo is not None:
            echo(line)

    try:
        _verify(bundle, trusted_keys, origin, report, say)
    except Failure as exc:
        report.ok, report.failure = False, str(exc)
        say(f"FAIL: {exc}")
    return report


def _verify(
    bundle: str | os.PathLike[str] | bytes,
    trusted: str | None,
    expected_origin: str | None,
    report: Report,
    say: Callable[[str], None],
) -> None:
    name = "bundle" if isinstance(bundle, bytes) else os.path.basename(os.fspath(bundle))
    if isinstance(bundle, bytes):
        data = bundle
    else:
        try:
            with open(bundle, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise Failure(f"{name}: cannot read the bundle ({exc.strerror})") from None
    files = dict(read_archive(data, name))
    names = tuple(files)
    if names not in (member_names(True), member_names(False)):
        raise Failure(f"{name}: holds {', '.join(names)}; expected {', '.join(member_names(True))}")
    say(
        f"archive: {name} is a well-formed bundle archive ({len(names)} files, {len(data):,} bytes)"
    )
    try:
        manifest = json.loads(files[MANIFEST].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"{MANIFEST}: not JSON") from None
    if not isinstance(manifest, dict) or canonical_json(manifest) != files[MANIFEST]:
        raise Failure(f"{MANIFEST}: not in canonical form (sorted keys, 2-space indent, ASCII)")
    if set(manifest) != _MANIFEST_KEYS:
        raise Failure(f"{MANIFEST}: expected exactly the fields {sorted(_MANIFEST_KEYS)}")
    if (manifest["format"], manifest["format_version"]) != (BUNDLE_FORMAT, BUNDLE_VERSION):
        raise Failure(f"{MANIFEST}: not a {BUNDLE_FORMAT} version {BUNDLE_VERSION}")
    if manifest["format_document"] != (FORMAT_DOC if FORMAT_DOC in files else FORMAT_MISSING):
        raise Failure(f"{MANIFEST}: format_document does not say whether FORMAT.md is included")
    listed = _get(manifest, "files", dict, MANIFEST)
    if set(listed) != set(names) - {MANIFEST}:
        raise Failure(f"{MANIFEST}: files lists {sorted(listed)}, the archive holds {list(names)}")
    for member in names[:-1]:
        actual = hashlib.sha256(files[member]).hexdigest()
        if listed[member] != actual:
            raise Failure(
                f"{member}: sha256 {actual} does not match manifest.json's {listed[member]!r}"
            )
    say(f"files: sha256 of {', '.join(names[:-1])} match {MANIFEST}")

    try:
        bundled = parse_key(files[KEY].decode("utf-8").strip())
    except (UnicodeDecodeError, Failure) as exc:
        raise Failure(f"{KEY}: {exc}") from None
    if files[KEY] != (bundled.text() + "\n").encode():
        raise Failure(f"{KEY}: not in canonical form (one key, lowercase key ID, one newline)")
    if manifest["verifier_key"] != bundled.label:
        raise Failure(f"{MANIFEST}: verifier_key {manifest['verifier_key']!r} is not {KEY}'s")
    if trusted is None:
        keys = [bundled]
        say(f"WARNING: {KEY_WARNING}: {bundled.text()}")
    else:
        try:
            keys = parse_keys(trusted)
        except Failure as exc:
            raise Failure(f"--key: {exc}") from None
        say(f"key: trusted key {', '.join(k.label for k in keys)} (given with --key)")
        if bundled not in keys:
            say(f"note: the bundled {KEY} ({bundled.label}) is not the trusted key; ignored")
    text, signer = open_note(files[CHECKPOINT], keys)
    say(f"signature: {CHECKPOINT} is signed by {signer}")
    origin, size, root = parse_checkpoint(text)
    report.origin, report.tree_size = origin, size
    say(f"checkpoint: origin {origin}, tree size {size}, root {root.hex()}")
    if (manifest["origin"], manifest["tree_size"], manifest["root"]) != (origin, size, root.hex()):
        raise Failure(f"{MANIFEST}: origin, tree_size or root differ from {CHECKPOINT}'s")
    if expected_origin is not None and origin != expected_origin:
        raise Failure(f"{CHECKPOINT}: origin {origin!r} is not the expected {expected_origin!r}")
    agreed = "as expected" if expected_origin else "checkpoint and manifest agree"
    say(f"origin: {origin} ({agreed})")

    raw = files[EVENTS]
    if not raw.endswith(b"\n"):
        raise Failure(f"{EVENTS}: empty, or its last line does not end in a newline")
    events: list[Event] = []
    for number, line in enumerate(raw[:-1].split(b"\n"), start=1):
        event = check_event(line, number, size, root)
        where = f"{EVENTS} line {number} (position {event.position})"
        if events:
            last = events[-1]
            if event.position != last.position + 1:
                raise Failure(
                    f"{where}: gap: follows position {last.position}; positions "
                    f"{last.position + 1}..{event.position - 1} are missing"
                )
            if event.prev_hash != last.hash:
                raise Failure(
                    f"{where}: broken link: prev_hash {event.prev_hash.hex()} is not "
                    f"the hash of position {last.position} ({last.hash.hex()})"
                )
            if event.recorded_at_us < last.recorded_at_us:
                raise Failure(
                    f"{where}: time regressed: recorded_at_us {event.recorded_at_us} "
                    f"is earlier than position {last.position}'s"
                )
        events.append(event)
    first, last = events[0], events[-1]
    report.events, report.first, report.last = len(events), first.position, last.position
    say(f"events: {len(events)} hashes recomputed from the events' fields (FORMAT.md section 3)")
    say(
        f"chain: positions {first.position}..{last.position} gapless, each linked to the one before"
    )
    say(f"inclusion: {len(events)} proofs verify against the checkpoint root (tree size {size})")
    _complete(manifest, events, size, report, say)
    report.ok = True
    say(f"OK: {len(events)} events verified against checkpoint {origin} size {size}")


def _complete(
    manifest: dict[str, Any],
    events: list[Event],
    size: int,
    report: Report,
    say: Callable[[str], None],
) -> None:
    """The selection is complete: every event it covers, and its boundaries, are present."""
    selection = _get(manifest, "selection", dict, MANIFEST)
    counts = _get(manifest, "counts", dict, MANIFEST)
    where = f"{MANIFEST}: selection"
    first, last = events[0], events[-1]
    if selection.get("kind") == "positions" and set(selection) == {"kind", "from", "to"}:
        if any(e.boundary for e in events):
            raise Failure(f"{EVENTS}: a position selection has no boundary events")
        if (selection["from"], selection["to"]) != (first.position, last.position):
            raise Failure(
                f"complete: {where} is positions {selection['from']}..{selection['to']}"
                f", the bundle holds {first.position}..{last.position}"
            )
        inside = len(events)
        message = f"complete: positions {first.position}..{last.position}, the whole selection"
    elif selection.get("kind") == "time" and set(selection) == {
        "kind",
        "since",
        "since_us",
        "until",
        "until_us",
    }:
        bounds = []
        for key in ("since", "until"):
            micros = selection[f"{key}_us"]
            if micros is not None and (not isinstance(micros, int) or isinstance(micros, bool)):
                raise Failure(f"{where}: {key}_us is not an integer")
            if selection[key] != (None if micros is None else iso_time(micros)):
                raise Failure(f"{where}: {key} {selection[key]!r} is not {key}_us {micros}")
            bounds.append(micros)
        since, until = bounds
        before = (
            first if first.boundary and since is not None and first.recorded_at_us < since else None
        )
        after = (
            last
            if last.boundary
            and last is not before
            and until is not None
            and last.recorded_at_us > until
            else None
        )
        for event in events:
            if event is before or event is after:
                continue
            if event.boundary:
                raise Failure(
                    f"complete: {EVENTS} position {event.position} is flagged boundary "
                    "but is not just outside the range"
                )
            t = event.recorded_at_us
            if (since is not None and t < since) or (until is not None and t > until):
                raise Failure(
                    f"complete: {EVENTS} position {event.position} was recorded at "
                    f"{iso_time(t)}, outside the range, and is not flagged boundary"
                )
        if before is None and first.position != 0:
            raise Failure(
                f"complete: no boundary event before the range, and the bundle starts "
                f"at position {first.position}, not 0: events before it may fall in "
                "the range"
            )
        if after is None and last.position != size - 1:
            raise Failure(
                f"complete: no boundary event after the range, and the bundle ends at "
                f"position {last.position}, not the checkpoint's last ({size - 1}): "
                "events after it may fall in the range"
            )
        report.boundary_before = None if before is None else before.position
        report.boundary_after = None if after is None else after.position
        inside = len(events) - (before is not None) - (after is not None)
        span = f"[{selection['since'] or 'start of log'}, {selection['until'] or 'checkpoint end'}]"
        a = first.position + (before is not None)
        b = last.position - (after is not None)
        message = (
            f"complete: positions {a}..{b} cover {span}"
            if inside
            else f"complete: no event was recorded in {span}"
        )
        edges = [
            f"boundary before: position {before.position} at {iso_time(before.recorded_at_us)}"
            if before
            else "no event before position 0",
            f"boundary after: position {after.position} at {iso_time(after.recorded_at_us)}"
            if after
            else f"the checkpoint ends at position {size - 1}",
        ]
        message += f" ({'; '.join(edges)})"
    else:
        raise Failure(f"{where}: not a positions or time selection")
    expected = {"events": len(events), "in_range": inside, "boundary": len(events) - inside}
    if counts != expected:
        raise Failure(f"{MANIFEST}: counts {counts} do not match {EVENTS} ({expected})")
    say(message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verify.py", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("bundle", help="the evidence bundle (.zip)")
    parser.add_argument("--key", help="trusted verifier key: a file, or the key text itself")
    parser.add_argument("--origin", help="the log origin the checkpoint must name")
    args = parser.parse_args(argv)
    trusted = None
    if args.key is not None:
        try:
            trusted = read_key_argument(args.key)
            parse_keys(trusted)
        except (OSError, UnicodeDecodeError, Failure) as exc:
            parser.error(f"--key: {exc}")
    report = verify(args.bundle, trusted, origin=args.origin, echo=print)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
