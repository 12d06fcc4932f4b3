"""The tamper matrix: what an attacker with superuser rights could do, and where
``verify`` catches it. Triggers are disabled first, as such an attacker would.

Two attacks the hash chain alone cannot see come at the end: cutting off the tail,
and rewriting every row from some position on with recomputed hashes. A signed
checkpoint of the Merkle tree, issued before the attack, catches both; the
ledger also refuses to sign a new checkpoint over them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from ledger import FaultKind, Settings
from ledger.canonical import datetime_to_micros, event_hash
from ledger.checkpointing import (
    CheckpointMismatch,
    InconsistentCheckpointError,
    check_against,
    issue_checkpoint,
)
from ledger.keys import SignerKey, generate
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger
from tests.conftest import make_events
from tests.support.attacker import Attacker

EVENTS = 100


@pytest.fixture
def attacker(url: str, store: ChainStore) -> Iterator[Attacker]:
    recorder = ChainedApplicationRecorder(store)
    for start in range(0, EVENTS, 25):  # four batches, as a service would append
        recorder.insert_events(make_events(EVENTS)[start : start + 25])
    assert verify_ledger(Settings(database_url=url)).ok
    intruder = Attacker(url)
    yield intruder
    intruder.close()


def _fault(url: str) -> tuple[int, FaultKind]:
    report = verify_ledger(Settings(database_url=url))
    assert report.fault is not None, "verify missed the tampering"
    return report.fault.position, report.fault.kind


def _micros(value: object) -> int:
    return value if isinstance(value, int) else datetime_to_micros(value)  # type: ignore[arg-type]


def test_changed_byte_of_state_is_a_hash_mismatch_at_its_position(
    url: str, attacker: Attacker
) -> None:
    # Flip one bit of one byte in the middle of position 41's stored bytes.
    state = bytearray(attacker.row(41)[4])
    state[len(state) // 2] ^= 0x01
    attacker.run("UPDATE ledger_events SET state = ? WHERE position = 41", (bytes(state),))
    assert _fault(url) == (41, FaultKind.HASH_MISMATCH)


def test_deleted_middle_row_is_a_gap(url: str, attacker: Attacker) -> None:
    attacker.run("DELETE FROM ledger_events WHERE position = 50")
    assert _fault(url) == (50, FaultKind.GAP)


def test_swapped_rows_are_reordered(url: str, attacker: Attacker) -> None:
    # Exchange positions 41 and 42, parking one row out of the way (positions are unique).
    attacker.run("UPDATE ledger_events SET position = 1000000000 WHERE position = 41")
    attacker.run("UPDATE ledger_events SET position = 41 WHERE position = 42")
    attacker.run("UPDATE ledger_events SET position = 42 WHERE position = 1000000000")
    assert _fault(url) == (41, FaultKind.REORDERED)


def test_forged_row_inserted_in_the_middle_is_caught_where_the_chain_breaks(
    url: str, attacker: Attacker
) -> None:
    # Make room at 50 by moving every later row up one, then insert a forged event at 50
    # whose hash is computed correctly and links to 49. The forged row itself is
    # well-formed; the chain breaks at 51, which now holds the event recorded at 50.
    attacker.run("UPDATE ledger_events SET position = position + 1000000000 WHERE position >= 50")
    attacker.run(
        "UPDATE ledger_events SET position = position - 999999999 WHERE position >= 1000000000"
    )
    prev = attacker.row(49)
    recorded_at = prev[5]
    state = b'{"forged":true}'
    digest = event_hash(
        50, "forged-aggregate", 1, prev[3], state, _micros(recorded_at), bytes(prev[7])
    )
    attacker.run(
        "INSERT INTO ledger_events (position, originator_id, originator_version, topic, state, "
        "recorded_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (50, "forged-aggregate", 1, prev[3], state, recorded_at, bytes(prev[7]), digest),
    )
    assert _fault(url) == (51, FaultKind.REORDERED)


def test_forged_row_appended_without_a_valid_link_is_a_broken_link(
    url: str, attacker: Attacker
) -> None:
    # A row with a self-consistent hash but a made-up prev_hash, at the tail.
    last = attacker.row(EVENTS - 1)
    made_up = bytes(32 * [7])
    digest = event_hash(EVENTS, "forged", 1, last[3], b"{}", _micros(last[5]), made_up)
    attacker.run(
        "INSERT INTO ledger_events (position, originator_id, originator_version, topic, state, "
        "recorded_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (EVENTS, "forged", 1, last[3], b"{}", last[5], made_up, digest),
    )
    assert _fault(url) == (EVENTS, FaultKind.BROKEN_LINK)


def test_cli_names_the_first_bad_position_and_exits_1(
    url: str, attacker: Attacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker.run("DELETE FROM ledger_events WHERE position = 77")
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["verify", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["checked"] == 77
    assert report["fault"] == {
        "position": 77,
        "kind": "gap",
        "detail": "position 77 is missing: the next stored position is 78",
    }
    text = CliRunner().invoke(cli, ["verify"])
    assert text.exit_code == 1
    assert "BROKEN at position 77 (gap)" in text.output


@pytest.fixture
def signed(url: str, store: ChainStore, attacker: Attacker) -> tuple[str, SignerKey]:
    """A checkpoint of the 100-event log, signed before the attack."""
    signer = generate("regledger.test/ledger")
    return issue_checkpoint(store, signer, "regledger.test/ledger"), signer


def test_truncated_tail_is_invisible_to_the_chain_but_not_to_a_checkpoint(
    url: str, store: ChainStore, attacker: Attacker, signed: tuple[str, SignerKey]
) -> None:
    note, signer = signed
    # Cutting off the last 10 events leaves a shorter chain that is intact in itself...
    attacker.run("DELETE FROM ledger_events WHERE position >= 90")
    report = verify_ledger(Settings(database_url=url))
    assert (report.ok, report.checked) == (True, 90)
    # ...but the signed checkpoint of 100 events says what is missing,
    _, mismatch = check_against(store, note, [signer.verifier()])
    assert mismatch == CheckpointMismatch(
        "truncated",
        "the log holds 90 events but the checkpoint commits to 100: events 90..99 are missing",
    )
    # and the ledger refuses to sign a checkpoint of the shorter log.
    with pytest.raises(InconsistentCheckpointError, match="events were removed"):
        issue_checkpoint(store, signer, "regledger.test/ledger")


def test_rewritten_chain_is_invisible_to_the_chain_but_not_to_a_checkpoint(
    url: str, store: ChainStore, attacker: Attacker, signed: tuple[str, SignerKey]
) -> None:
    note, signer = signed
    # Rewrite every row from 60 on with altered state and recomputed hashes and links.
    prev_hash = bytes(attacker.row(59)[7])
    for position in range(60, EVENTS):
        row = attacker.row(position)
        state = bytes(row[4]) + b" "
        digest = event_hash(position, row[1], row[2], row[3], state, _micros(row[5]), prev_hash)
        attacker.run(
            "UPDATE ledger_events SET state = ?, prev_hash = ?, hash = ? WHERE position = ?",
            (state, prev_hash, digest, position),
        )
        prev_hash = digest
    assert verify_ledger(Settings(database_url=url)).ok  # the chain alone cannot tell
    _, mismatch = check_against(store, note, [signer.verifier()])
    assert mismatch is not None and mismatch.kind == "rewritten"
    assert mismatch.detail.startswith("the first 100 events hash to root ")
    assert mismatch.detail.endswith(": recorded events were changed")
    with pytest.raises(InconsistentCheckpointError, match="the log was rewritten"):
        issue_checkpoint(store, signer, "regledger.test/ledger")


def test_cli_verify_against_a_checkpoint(
    url: str,
    attacker: Attacker,
    signed: tuple[str, SignerKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    note, signer = signed
    (tmp_path / "cp.note").write_text(note, encoding="utf-8")
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    args = [
        "verify",
        "--checkpoint",
        str(tmp_path / "cp.note"),
        "--key",
        signer.verifier().encode(),
    ]
    intact = CliRunner().invoke(cli, args)
    assert intact.exit_code == 0, intact.output
    assert "checkpoint: MATCHES: regledger.test/ledger size 100" in intact.output
    attacker.run("DELETE FROM ledger_events WHERE position >= 95")
    cut = CliRunner().invoke(cli, args)
    assert cut.exit_code == 1
    assert "checkpoint: MISMATCH (truncated): regledger.test/ledger size 100" in cut.output
    other = generate("regledger.test/ledger").verifier().encode()
    forged = CliRunner().invoke(cli, [*args[:3], "--key", other])
    assert forged.exit_code == 2
    assert forged.output.startswith("Error: ")
