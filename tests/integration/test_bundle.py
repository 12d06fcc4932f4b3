"""Evidence bundles on both backends: exported, verified in process and by the bundled
verify.py in a separate interpreter, and every kind of tampering refused."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from console.bundle_commands import export_command, verify_bundle_command
from ledger import offline_verifier as ov
from ledger.bundle import (
    BundleError,
    CheckpointMismatchError,
    export_bundle,
    verify_bundle,
    write_archive,
)
from ledger.canonical import event_hash
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import SignerKey, generate
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from tests.conftest import make_events

ORIGIN = "regledger.example/ledger"
BATCHES, PER_BATCH = 10, 100


@dataclass
class Ledger:
    store: ChainStore
    key: SignerKey
    note: str
    size: int

    @property
    def vkey(self) -> str:
        return self.key.verifier().encode()

    def time_of(self, position: int) -> int:
        record = self.store.record_at(position)
        assert record is not None
        return record.recorded_at_us


@pytest.fixture
def ledger(store: ChainStore) -> Ledger:
    """1,000 events in 10 batches of 100, each batch its own recorded_at; a signed checkpoint."""
    recorder = ChainedApplicationRecorder(store)
    events = make_events(BATCHES * PER_BATCH, size=40)
    for batch in range(BATCHES):
        recorder.insert_events(events[batch * PER_BATCH : (batch + 1) * PER_BATCH])
        time.sleep(0.003)  # distinct recorded_at per batch
    size = BATCHES * PER_BATCH
    key = generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, store.tree_root(size)), [key])
    return Ledger(store, key, note, size)


def _decode(record: Any) -> dict[str, Any]:
    return {"n": json.loads(record.state)["n"]}


def _export(ledger: Ledger, out: Path, **selection: int) -> Path:
    export_bundle(
        ledger.store,
        out,
        checkpoint_note=ledger.note,
        verifier=ledger.key.verifier(),
        decode=_decode,
        **selection,
    )
    return out


def _time_selection(ledger: Ledger) -> dict[str, int]:
    # Batches 3, 4, 5 (positions 300..599); boundaries 299 and 600.
    return {"since_us": ledger.time_of(300), "until_us": ledger.time_of(599)}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding nothing but a verify.py, as a regulator would run it."""
    folder = tmp_path / "regulator"
    folder.mkdir()
    return folder


def _run_verify_py(bundle: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundle's own verify.py, in an isolated interpreter (-I), from ``folder``."""
    script = folder / "verify.py"
    if not script.exists():
        with zipfile.ZipFile(bundle) as archive:
            script.write_bytes(archive.read("verify.py"))
    return subprocess.run(
        [sys.executable, "-I", "verify.py", str(bundle), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _members(bundle: Path) -> list[tuple[str, bytes]]:
    return ov.read_archive(bundle.read_bytes())


def _rebuild(out: Path, files: list[tuple[str, bytes]], **counts: int) -> Path:
    """Write ``files`` as a bundle, with manifest.json's sha256s (and ``counts``) fixed."""
    body = [(name, data) for name, data in files if name != ov.MANIFEST]
    manifest = json.loads(dict(files)[ov.MANIFEST])
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in body}
    manifest["counts"].update(counts)
    write_archive(out, [*body, (ov.MANIFEST, ov.canonical_json(manifest))])
    return out


def _fail_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout.splitlines()[-1]


# --- exporting and verifying -------------------------------------------------------------


def test_position_bundle_verifies_in_process_and_offline(
    ledger: Ledger, tmp_path: Path, workdir: Path
) -> None:
    bundle = _export(ledger, tmp_path / "positions.zip", first=100, last=300)
    with zipfile.ZipFile(bundle) as archive:  # a standard zip reader agrees
        assert archive.testzip() is None
        assert archive.namelist() == list(ov.member_names(True))
        manifest = json.loads(archive.read("manifest.json"))
        lines = archive.read("events.jsonl").decode().splitlines()
        assert archive.read("verify.py") == Path(ov.__file__).read_bytes()
        assert archive.read("FORMAT.md").startswith(b"# regledger chain format")
        assert archive.read("key.vkey").decode() == ledger.vkey + "\n"
        assert archive.read("checkpoint.note").decode() == ledger.note
    assert manifest["selection"] == {"kind": "positions", "from": 100, "to": 300}
    assert manifest["counts"] == {"events": 201, "in_range": 201, "boundary": 0}
    assert (manifest["origin"], manifest["tree_size"]) == (ORIGIN, 1000)
    assert manifest["root"] == ledger.store.tree_root(1000).hex()
    first = json.loads(lines[0])
    record = ledger.store.record_at(100)
    assert record is not None
    assert first["position"] == 100 and first["decoded"] == {"n": 100}
    assert base64.b64decode(first["state_b64"]) == record.state
    assert first["hash"] == record.hash.hex() and first["boundary"] is False
    verify_inclusion(  # the proof checks out with regledger's own Merkle code too
        100,
        1000,
        leaf_hash(record.hash),
        [bytes.fromhex(p) for p in first["inclusion_proof"]],
        ledger.store.tree_root(1000),
    )

    report = verify_bundle(bundle, ledger.vkey)
    assert report.ok and report.failure is None
    label = ledger.key.verifier().label
    assert report.lines[1:] == [
        "files: sha256 of checkpoint.note, key.vkey, events.jsonl, FORMAT.md, verify.py match "
        "manifest.json",
        f"key: trusted key {label} (given with --key)",
        f"signature: checkpoint.note is signed by {label}",
        f"checkpoint: origin {ORIGIN}, tree size 1000, root {manifest['root']}",
        f"origin: {ORIGIN} (checkpoint and manifest agree)",
        "events: 201 hashes recomputed from the events' fields (FORMAT.md section 3)",
        "chain: positions 100..300 gapless, each linked to the one before",
        "inclusion: 201 proofs verify against the checkpoint root (tree size 1000)",
        "complete: positions 100..300, the whole selection",
        f"OK: 201 events verified against checkpoint {ORIGIN} size 1000",
    ]
    assert report.lines[0].startswith("archive: positions.zip is a well-formed bundle archive")

    key_file = tmp_path / "ledger.vkey"
    key_file.write_text(ledger.vkey + "\n")
    offline = _run_verify_py(bundle, workdir, "--key", str(key_file))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.splitlines() == report.lines

    unkeyed = _run_verify_py(bundle, workdir)
    assert unkeyed.returncode == 0
    assert f"WARNING: {ov.KEY_WARNING}: {ledger.vkey}" in unkeyed.stdout.splitlines(), (
        unkeyed.stdout
    )


def test_verify_py_imports_only_the_standard_library_and_cryptography(
    ledger: Ledger, tmp_path: Path, workdir: Path
) -> None:
    source = Path(ov.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None
            imported.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"cryptography", "__future__"}
    assert imported <= allowed, imported - allowed

    # regledger is installed (editable) in this venv: run verify.py with its packages blocked.
    bundle = _export(ledger, tmp_path / "b.zip", first=0, last=9)
    _run_verify_py(bundle, workdir)  # extracts verify.py
    boot = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'ledger', 'console', 'domain', 'projections',\n"
        "                                  'reports', 'streams', 'eventsourcing'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path('verify.py', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", boot, "verify.py", str(bundle), "--key", ledger.vkey],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.splitlines()[-1]
        == f"OK: 10 events verified against checkpoint {ORIGIN} size 1000"
    )
    assert sorted(p.name for p in workdir.iterdir()) == ["verify.py"]


def test_time_range_bundle_is_complete_with_its_boundaries(
    ledger: Ledger, tmp_path: Path, workdir: Path
) -> None:
    selection = _time_selection(ledger)
    summary = export_bundle(
        ledger.store,
        tmp_path / "day.zip",
        checkpoint_note=ledger.note,
        verifier=ledger.key.verifier(),
        **selection,
    )
    assert (summary.first, summary.last, summary.events, summary.in_range) == (299, 600, 302, 300)
    assert (summary.boundary_before, summary.boundary_after) == (299, 600)
    bundle = Path(summary.path)
    lines = [json.loads(line) for line in dict(_members(bundle))["events.jsonl"].splitlines()]
    assert [(e["position"], e["boundary"]) for e in (lines[0], lines[1], lines[-2], lines[-1])] == [
        (299, True),
        (300, False),
        (599, False),
        (600, True),
    ]
    since, until = (ov.iso_time(selection["since_us"]), ov.iso_time(selection["until_us"]))
    expected = (
        f"complete: positions 300..599 cover [{since}, {until}] (boundary before: position 299 "
        f"at {ov.iso_time(ledger.time_of(299))}; boundary after: position 600 at "
        f"{ov.iso_time(ledger.time_of(600))})"
    )
    report = verify_bundle(bundle, ledger.vkey)
    assert report.ok, report.failure
    assert expected in report.lines
    assert (report.boundary_before, report.boundary_after) == (299, 600)
    offline = _run_verify_py(bundle, workdir, "--key", ledger.vkey)
    assert offline.returncode == 0, offline.stdout
    assert expected in offline.stdout.splitlines()


def test_open_ended_and_empty_time_ranges(ledger: Ledger, tmp_path: Path) -> None:
    # From the start of batch 8 on: no boundary after; the bundle ends at the checkpoint.
    tail = _export(ledger, tmp_path / "tail.zip", since_us=ledger.time_of(800))
    report = verify_bundle(tail, ledger.vkey)
    assert report.ok, report.failure
    assert (report.boundary_before, report.boundary_after, report.last) == (799, None, 999)
    assert any("the checkpoint ends at position 999" in line for line in report.lines)
    # Between two batches: nothing recorded, the two boundaries are adjacent.
    gap = ledger.time_of(199) + 1
    if gap < ledger.time_of(200):
        empty = _export(ledger, tmp_path / "empty.zip", since_us=gap, until_us=gap)
        report = verify_bundle(empty, ledger.vkey)
        assert report.ok, report.failure
        assert report.lines[-2].startswith(
            f"complete: no event was recorded in [{ov.iso_time(gap)}, {ov.iso_time(gap)}]"
        )
        assert (report.first, report.last) == (199, 200)


# --- tampering ---------------------------------------------------------------------------


def _offsets(bundle: Path) -> dict[str, int]:
    """Byte offsets of interesting places in the archive."""
    data = bundle.read_bytes()
    with zipfile.ZipFile(bundle) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    start = {name: info.header_offset + 30 + len(name) for name, info in infos.items()}
    central = data.rindex(b"PK\1\2", 0, len(data) - 22)  # the last central directory entry
    first_central = data.index(b"PK\1\2")
    return {
        "events.jsonl (data)": start["events.jsonl"] + infos["events.jsonl"].file_size // 2,
        "events.jsonl (a hash)": start["events.jsonl"]
        + data[start["events.jsonl"] :].index(b'"hash": "')
        + 12,
        "checkpoint.note (data)": start["checkpoint.note"] + 5,
        "checkpoint.note (signature)": start["checkpoint.note"]
        + infos["checkpoint.note"].file_size
        - 10,
        "manifest.json (data)": start["manifest.json"] + 40,
        "events.jsonl (local header CRC)": infos["events.jsonl"].header_offset + 14,
        "central directory (first entry)": first_central + 10,
        "central directory (last entry's offset)": central + 42,
        "end of central directory": len(data) - 10,
        "first byte": 0,
        "last byte": len(data) - 1,
    }


def test_flipping_any_byte_fails_both_verifiers(
    ledger: Ledger, tmp_path: Path, workdir: Path
) -> None:
    bundle = _export(ledger, tmp_path / "b.zip", first=100, last=300)
    data = bundle.read_bytes()
    spread = {f"offset {i * (len(data) - 1) // 39}": i * (len(data) - 1) // 39 for i in range(40)}
    places = {**_offsets(bundle), **spread}
    tampered = tmp_path / "tampered.zip"
    _run_verify_py(bundle, workdir)  # extract the untampered verify.py once
    for place, offset in places.items():
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        tampered.write_bytes(changed)
        report = verify_bundle(tampered, ledger.vkey)
        assert not report.ok, place
        assert report.failure is not None
        assert report.failure.startswith("tampered.zip: the zip archive is corrupt: "), (
            place,
            report.failure,
        )
        assert _fail_line(_run_verify_py(tampered, workdir, "--key", ledger.vkey)) == (
            f"FAIL: {report.failure}"
        ), place
    # The precise messages of two of them.
    changed = bytearray(data)
    changed[places["events.jsonl (data)"]] ^= 0xFF
    tampered.write_bytes(changed)
    with zipfile.ZipFile(bundle) as archive:
        info = archive.getinfo("events.jsonl")
    start = info.header_offset + 30 + len("events.jsonl")
    content = bytes(changed[start : start + info.file_size])
    assert verify_bundle(tampered, ledger.vkey).failure == (
        f"tampered.zip: the zip archive is corrupt: the data of events.jsonl (offsets "
        f"{start}..{start + info.file_size - 1}) has CRC-32 {zlib.crc32(content):08x}, its "
        f"headers say {info.CRC:08x}: the file was altered or damaged"
    )
    tampered.write_bytes(data[:-1])
    assert verify_bundle(tampered, ledger.vkey).failure == (
        "tampered.zip: the zip archive is corrupt: no end-of-central-directory record in its "
        "last 22 bytes (not a zip file, truncated, or bytes appended)"
    )


def test_rehashed_state_fails_the_inclusion_proof(
    ledger: Ledger, tmp_path: Path, workdir: Path
) -> None:
    bundle = _export(ledger, tmp_path / "b.zip", first=100, last=300)
    files = _members(bundle)
    events = dict(files)["events.jsonl"].splitlines()
    event = json.loads(events[50])
    assert event["position"] == 150
    state = b'{"n":150,"forged":true}'
    event["state_b64"] = base64.b64encode(state).decode()
    forged = event_hash(
        150,
        event["originator_id"],
        event["originator_version"],
        event["topic"],
        state,
        event["recorded_at_us"],
        bytes.fromhex(event["prev_hash"]),
    )
    event["hash"] = forged.hex()
    events[50] = json.dumps(event, ensure_ascii=False).encode()
    files = [(n, b"\n".join(events) + b"\n" if n == "events.jsonl" else d) for n, d in files]
    rebuilt = _rebuild(tmp_path / "forged.zip", files)
    root = ledger.store.tree_root(1000).hex()
    report = verify_bundle(rebuilt, ledger.vkey)
    assert report.failure is not None
    assert report.failure.startswith("events.jsonl line 51 (position 150): the inclusion proof ")
    assert report.failure.endswith(f"not the checkpoint's {root} (tree size 1000)")
    assert _fail_line(_run_verify_py(rebuilt, workdir, "--key", ledger.vkey)) == (
        f"FAIL: {report.failure}"
    )
    # Only the state changed, the hash kept: the recomputed hash gives it away.
    event["hash"] = json.loads(events[49])["hash"]  # any other stored hash
    events[50] = json.dumps(event, ensure_ascii=False).encode()
    files = [(n, b"\n".join(events) + b"\n" if n == "events.jsonl" else d) for n, d in files]
    report = verify_bundle(_rebuild(tmp_path / "forged2.zip", files), ledger.vkey)
    assert report.failure is not None
    assert report.failure.startswith(
        f"events.jsonl line 51 (position 150): hash mismatch: the event's fields hash to "
        f"{forged.hex()}, the bundle says"
    )


def test_removed_event_is_a_gap(ledger: Ledger, tmp_path: Path) -> None:
    bundle = _export(ledger, tmp_path / "b.zip", first=100, last=300)
    files = _members(bundle)
    events = dict(files)["events.jsonl"].splitlines()
    del events[10]
    files = [(n, b"\n".join(events) + b"\n" if n == "events.jsonl" else d) for n, d in files]
    report = verify_bundle(_rebuild(tmp_path / "gap.zip", files, events=200), ledger.vkey)
    assert report.failure == (
        "events.jsonl line 11 (position 111): gap: follows position 109; positions 110..110 "
        "are missing"
    )


def test_wrong_key_fails(ledger: Ledger, tmp_path: Path, workdir: Path) -> None:
    bundle = _export(ledger, tmp_path / "b.zip", first=100, last=110)
    other = generate(ORIGIN).verifier()
    report = verify_bundle(bundle, other.encode())
    expected = (
        f"checkpoint.note: not signed by the trusted key {other.label} (signed by "
        f"{ledger.key.verifier().label})"
    )
    assert report.failure == expected
    bundled = ledger.key.verifier().label
    assert f"note: the bundled key.vkey ({bundled}) is not the trusted key; ignored" in report.lines
    assert (
        _fail_line(_run_verify_py(bundle, workdir, "--key", other.encode())) == f"FAIL: {expected}"
    )
    usage = _run_verify_py(bundle, workdir, "--key", "not-a-key")
    assert usage.returncode == 2 and "--key: verifier key 'not-a-key'" in usage.stderr


def test_a_bundle_with_its_own_forged_key_is_caught_by_the_trusted_key(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Re-signing a forged checkpoint with a new key passes only without --key (and warns)."""
    bundle = _export(ledger, tmp_path / "b.zip", first=100, last=110)
    forger = generate(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 1000, ledger.store.tree_root(1000))
    files = [
        (n, sign_checkpoint(checkpoint, [forger]).encode() if n == "checkpoint.note" else d)
        for n, d in _members(bundle)
    ]
    files = [
        (n, (forger.verifier().encode() + "\n").encode() if n == "key.vkey" else d)
        for n, d in files
    ]
    manifest = json.loads(dict(files)["manifest.json"])
    manifest["verifier_key"] = forger.verifier().label
    files[-1] = ("manifest.json", ov.canonical_json(manifest))
    rebuilt = _rebuild(tmp_path / "forged.zip", files)
    unkeyed = verify_bundle(rebuilt, None)
    assert unkeyed.ok and any(
        line.startswith(f"WARNING: {ov.KEY_WARNING}") for line in unkeyed.lines
    )
    assert not verify_bundle(rebuilt, ledger.vkey).ok


def test_removed_boundary_fails_completeness(ledger: Ledger, tmp_path: Path, workdir: Path) -> None:
    bundle = _export(ledger, tmp_path / "day.zip", **_time_selection(ledger))
    files = _members(bundle)
    events = dict(files)["events.jsonl"].splitlines()

    def without(index: int, name: str) -> Path:
        kept = events[:index] + events[index + 1 :] if index >= 0 else events[:index]
        body = b"\n".join(kept) + b"\n"
        changed = [(n, body if n == "events.jsonl" else d) for n, d in files]
        return _rebuild(tmp_path / name, changed, events=301, boundary=1)

    no_after = without(-1, "no-after.zip")
    report = verify_bundle(no_after, ledger.vkey)
    assert report.failure == (
        "complete: no boundary event after the range, and the bundle ends at position 599, "
        "not the checkpoint's last (999): events after it may fall in the range"
    )
    assert _fail_line(_run_verify_py(no_after, workdir, "--key", ledger.vkey)) == (
        f"FAIL: {report.failure}"
    )
    no_before = without(0, "no-before.zip")
    assert verify_bundle(no_before, ledger.vkey).failure == (
        "complete: no boundary event before the range, and the bundle starts at position 300, "
        "not 0: events before it may fall in the range"
    )


# --- refusing to export ------------------------------------------------------------------


def test_export_refuses_a_checkpoint_of_another_ledger(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    wrong_root = sign_checkpoint(Checkpoint(ORIGIN, 1000, bytes(32)), [ledger.key])
    with pytest.raises(CheckpointMismatchError, match="the checkpoint does not match this ledger"):
        export_bundle(ledger.store, out, checkpoint_note=wrong_root, verifier=ledger.key.verifier())
    too_big = sign_checkpoint(Checkpoint(ORIGIN, 1001, bytes(32)), [ledger.key])
    with pytest.raises(
        CheckpointMismatchError, match="covers 1,001 events, the ledger holds 1,000"
    ):
        export_bundle(ledger.store, out, checkpoint_note=too_big, verifier=ledger.key.verifier())
    with pytest.raises(BundleError, match="does not verify with"):
        export_bundle(
            ledger.store, out, checkpoint_note=ledger.note, verifier=generate(ORIGIN).verifier()
        )
    small = sign_checkpoint(Checkpoint(ORIGIN, 500, ledger.store.tree_root(500)), [ledger.key])
    with pytest.raises(BundleError, match=r"position 600 is beyond the checkpoint \(tree size 500"):
        export_bundle(
            ledger.store, out, checkpoint_note=small, verifier=ledger.key.verifier(), last=600
        )
    with pytest.raises(BundleError, match="not both"):
        _export(ledger, out, first=1, since_us=0)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


# --- the commands ------------------------------------------------------------------------


def test_export_and_verify_bundle_commands(
    ledger: Ledger, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    monkeypatch.delenv("REGLEDGER_SIGNING_KEY", raising=False)
    runner = CliRunner()
    for command in (export_command, verify_bundle_command):
        assert "Example:" in runner.invoke(command, ["--help"]).output
    note = tmp_path / "checkpoint.note"
    note.write_text(ledger.note)
    vkey = tmp_path / "ledger.vkey"
    vkey.write_text(ledger.vkey + "\n")
    out = tmp_path / "cli.zip"
    exported = runner.invoke(
        export_command,
        [
            "--from",
            "100",
            "--to",
            "300",
            "--out",
            str(out),
            "--checkpoint",
            str(note),
            "--key",
            str(vkey),
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert exported.output.startswith(f"exported 201 events (positions 100..300) to {out}, ")
    assert exported.output.rstrip().endswith(f"proven against checkpoint {ORIGIN} size 1,000")
    decoded = json.loads(dict(_members(out))["events.jsonl"].splitlines()[0])["decoded"]
    assert set(decoded) == {"event_type", "actor", "occurred_at", "source_event_id", "payload"}

    verified = runner.invoke(verify_bundle_command, [str(out), "--key", str(vkey)])
    assert verified.exit_code == 0, verified.output
    assert verified.output.splitlines()[-1] == (
        f"OK: 201 events verified against checkpoint {ORIGIN} size 1000"
    )
    wrong = runner.invoke(
        verify_bundle_command, [str(out), "--key", generate(ORIGIN).verifier().encode()]
    )
    assert wrong.exit_code == 1
    assert wrong.output.splitlines()[-1].startswith("FAIL: checkpoint.note: not signed by")
    assert runner.invoke(verify_bundle_command, [str(out), "--key", "junk"]).exit_code == 2

    since = ov.iso_time(ledger.time_of(300))
    by_time = runner.invoke(
        export_command,
        [
            "--since",
            since,
            "--until",
            ov.iso_time(ledger.time_of(599)),
            "--out",
            str(out),
            "--checkpoint",
            str(note),
            "--key",
            str(vkey),
        ],
    )
    assert by_time.exit_code == 0, by_time.output
    assert "(positions 299..600 incl. boundary 299 and boundary 600)" in by_time.output

    # No checkpoint given and none stored yet.
    latest = getattr(ledger.store, "latest_checkpoint", None)
    if latest is None or latest() is None:
        missing = runner.invoke(
            export_command, ["--to", "300", "--out", str(out), "--key", str(vkey)]
        )
        assert missing.exit_code == 2
        assert "no signed checkpoint covers position 300; run `regledger checkpoint` first" in (
            missing.output
        )
    no_key = runner.invoke(export_command, ["--out", str(out), "--checkpoint", str(note)])
    assert no_key.exit_code == 2 and "give --key FILE" in no_key.output
    naive = runner.invoke(export_command, ["--since", "2026-03-02T00:00:00", "--out", str(out)])
    assert naive.exit_code == 2 and "has no time zone" in naive.output
