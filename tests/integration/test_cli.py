"""The regledger command line, through click's CliRunner, on both backends."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from console.cli import _progress, cli
from ledger import Settings
from ledger.merkle import verify_inclusion
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger
from tests.conftest import make_events


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    assert ("verify",) in commands and ("db", "migrate") in commands
    for path in commands:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example:" in result.output, f"`regledger {' '.join(path)} --help` has no example"


def test_migrate_then_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'l.db'}")
    runner = CliRunner()
    listed = runner.invoke(cli, ["db", "migrate", "--list"])
    assert listed.exit_code == 0
    assert [line.split()[:2] for line in listed.output.splitlines()] == [
        ["pending", "0001_ledger_events.sql"],
        ["pending", "0002_append_only.sql"],
        ["pending", "0003_tracking.sql"],
        ["pending", "0004_tree_tiles.sql"],
        ["pending", "0005_checkpoints.sql"],
        ["pending", "0006_projections.sql"],
        ["pending", "0007_streams.sql"],
        ["pending", "0008_indicators.sql"],
    ]
    migrated = runner.invoke(cli, ["db", "migrate"])
    assert migrated.exit_code == 0
    assert migrated.output.endswith(
        f"8 migration(s) applied to sqlite:///{tmp_path / 'l.db'}; schema is up to date\n"
    )
    again = runner.invoke(cli, ["db", "migrate"])
    assert again.output.startswith("0 migration(s) applied")
    states = [
        line.split()[0]
        for line in runner.invoke(cli, ["db", "migrate", "--list"]).output.splitlines()
    ]
    assert states == ["applied"] * 8


def test_verify_intact_log(url: str, store: ChainStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(30))
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["verify", "--json", "--from", "10", "--to", "19"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["ok"], report["from"], report["to"], report["checked"]) == (True, 10, 19, 10)
    assert report["head"] == {
        "next_position": 20,
        "hash": store.record_at(19).hash.hex(),  # type: ignore[union-attr]
    }
    text = CliRunner().invoke(cli, ["verify"])
    assert text.exit_code == 0
    assert "checked:   30 events (positions 0..29)" in text.output
    assert "result:    INTACT" in text.output


def test_verify_usage_errors_exit_2_with_one_line(
    url: str, store: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(3))
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["verify", "--from", "7"])
    assert result.exit_code == 2
    assert result.output == "Error: --from 7 is past the last position 2; give --from 2 or less\n"


def test_unreachable_database_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/ledger")
    result = CliRunner().invoke(cli, ["verify"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "Error: cannot connect to postgresql://nobody:***@127.0.0.1:1/ledger"
    )
    assert lines[0].endswith("is PostgreSQL running, and is REGLEDGER_DATABASE_URL right?")
    assert "secret" not in result.output


def test_unmigrated_database_says_to_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = CliRunner().invoke(cli, ["verify"])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: sqlite:///{tmp_path / 'new.db'} has 8 pending migration(s) "
        "(first: 0001_ledger_events.sql); run `regledger db migrate`\n"
    )


def test_bad_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", "mysql://x")
    result = CliRunner().invoke(cli, ["verify"])
    assert result.exit_code == 2
    assert result.output == (
        "Error: REGLEDGER_DATABASE_URL='mysql://x' is neither postgresql://... nor "
        "sqlite:///PATH; set it to one of those\n"
    )


def test_progress_bar_renders_on_a_terminal(url: str, store: ChainStore) -> None:
    # CliRunner is no terminal; render the bar verify uses on one, with real progress.
    ChainedApplicationRecorder(store).insert_events(make_events(40))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    seen: list[tuple[int, int]] = []
    with _progress("verifying", terminal) as advance:
        advance(0, 0)  # before the total is known

        def record(done: int, total: int) -> None:
            seen.append((done, total))
            advance(done, total)

        report = verify_ledger(Settings(database_url=url), progress=record)
    assert report.ok
    assert seen[-1] == (40, 40)
    assert "40/40" in screen.getvalue()


def test_demo_records_verifies_and_summarises(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["demo", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "recorded:  1,810 events over 1 day(s), seed 7" in result.output
    assert (
        "trading:   345 decisions, 158 orders placed, 10 blocked by 10 failed pre-trade "
        "checks, 220 executions, 3 risk breaches"
    ) in result.output
    assert "checked:   1,810 events (positions 0..1809)" in result.output
    assert "result:    INTACT" in result.output
    again = CliRunner().invoke(cli, ["demo"])
    assert again.exit_code == 2
    assert again.output.endswith(
        "already holds 1,810 events; the demo records into an empty ledger: set "
        "REGLEDGER_DATABASE_URL to a new file\n"
    )


def test_keys_checkpoint_and_prove(
    url: str, store: ChainStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(300))
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    monkeypatch.setenv("REGLEDGER_LOG_ORIGIN", "regledger.test/ledger")
    runner = CliRunner()
    key_file = tmp_path / "ledger.key"
    made = runner.invoke(cli, ["keys", "generate", "regledger.test/ledger", "--out", str(key_file)])
    assert made.exit_code == 0, made.output
    vkey = made.output.splitlines()[0]
    assert vkey.startswith("regledger.test/ledger+")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(cli, ["keys", "generate", "x", "--out", str(key_file)])
    assert again.exit_code == 2  # an existing key is never overwritten

    signed = runner.invoke(cli, ["checkpoint", "--key-file", str(key_file)])
    assert signed.exit_code == 0, signed.output
    lines = signed.output.split("\n")
    assert lines[:2] == ["regledger.test/ledger", "300"]
    assert bytes.fromhex(store.tree_root(300).hex()) == base64.b64decode(lines[2])
    assert lines[4].startswith("— regledger.test/ledger ")
    assert store.latest_checkpoint() == signed.output

    proof = runner.invoke(cli, ["prove", "257", "--json"])
    assert proof.exit_code == 0, proof.output
    shown = json.loads(proof.output)
    assert (shown["tree_size"], shown["position"], shown["verified"]) == (300, 257, True)
    verify_inclusion(
        257,
        300,
        bytes.fromhex(shown["leaf_hash"]),
        [bytes.fromhex(h) for h in shown["proof"]],
        store.tree_root(300),
    )
    outside = runner.invoke(cli, ["prove", "300"])
    assert outside.exit_code == 2
    assert outside.output == (
        "Error: position 300 is outside the checkpoint's tree of 300 events (0..299); "
        "issue a newer checkpoint\n"
    )
