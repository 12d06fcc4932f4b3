"""regledger events, show and history, through CliRunner, on both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from console.cli import cli
from console.trail import open_trail
from ledger import Settings
from ledger.canonical import micros_to_datetime
from ledger.store import ChainStore
from tests.support.attacker import Attacker

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def recorded(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A canary deployment: requested by alice, approved by bob, started by ops."""
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    trail = open_trail(Settings(database_url=url))
    deployment = trail.request_deployment(
        change_ticket="CHG-1001",
        service="signal-engine",
        version="4.2.0",
        commit="9f2c1e7",
        strategy="CANARY",
        actor="alice",
        occurred_at=T0,
        source_event_id="jira-88",
    )
    trail.approve_deployment(deployment, actor="bob", occurred_at=T0 + timedelta(minutes=3))
    trail.start_deployment(deployment, actor="ops", occurred_at=T0 + timedelta(minutes=9))
    trail.close()
    return str(deployment)


def _json(args: list[str]) -> object:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_events_as_json_are_decoded(recorded: str) -> None:
    events = _json(["events", "--format", "json"])
    assert isinstance(events, list)
    assert [(e["position"], e["event_type"], e["actor"]) for e in events] == [
        (0, "Deployment.Requested", "alice"),
        (1, "Deployment.Approved", "bob"),
        (2, "Deployment.Started", "ops"),
    ]
    first = events[0]
    assert first["aggregate_id"] == recorded
    assert first["occurred_at"] == "2026-03-02T09:00:00+00:00"
    assert first["source_event_id"] == "jira-88"
    assert first["prev_hash"] == "00" * 32
    assert first["payload"] == {
        "change_ticket": "CHG-1001",
        "service": "signal-engine",
        "version": "4.2.0",
        "commit": "9f2c1e7",
        "strategy": "CANARY",
        "emergency": False,
    }
    assert events[1]["prev_hash"] == first["hash"]


def test_events_filters_combine(recorded: str) -> None:
    def positions(*args: str) -> list[int]:
        found = _json(["events", "--format", "json", *args])
        assert isinstance(found, list)
        return [e["position"] for e in found]

    assert positions("--type", "Deployment.Approved") == [1]
    assert positions("--actor", "ops") == [2]
    assert positions("--aggregate", "deployment/CHG-1001") == [0, 1, 2]
    assert positions("--aggregate", "deployment/CHG-9999") == []
    assert positions("--from", "1", "--to", "1") == [1]
    assert positions("--limit", "2") == [0, 1]
    assert positions("--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z") == []
    assert positions("--since", "2000-01-01T00:00:00Z") == [0, 1, 2]


def test_events_as_csv_and_table(recorded: str) -> None:
    result = CliRunner().invoke(cli, ["events", "--format", "csv", "--type", "Deployment.Started"])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["position"], r["event_type"], r["actor"], r["payload"]) for r in rows] == [
        ("2", "Deployment.Started", "ops", '{"approved": true}')
    ]
    table = CliRunner().invoke(cli, ["events"])
    assert table.exit_code == 0
    assert "Deployment.Requested" in table.output
    assert table.output.rstrip().endswith("3 event(s)")


def test_bad_time_filter_is_one_line(recorded: str) -> None:
    result = CliRunner().invoke(cli, ["events", "--since", "yesterday"])
    assert result.exit_code == 2
    assert result.output == (
        "Error: --since 'yesterday' is not an ISO 8601 time; give e.g. 2026-03-02T09:30:00Z\n"
    )
    naive = CliRunner().invoke(cli, ["events", "--since", "2026-03-02T09:00:00"])
    assert naive.output == "Error: --since '2026-03-02T09:00:00' has no time zone; add Z for UTC\n"


def test_show_checks_the_hash_and_the_link(recorded: str, url: str) -> None:
    shown = _json(["show", "1", "--json"])
    assert isinstance(shown, dict)
    assert (shown["event_type"], shown["actor"]) == ("Deployment.Approved", "bob")
    assert (shown["hash_recomputed"], shown["links_to_previous"]) == (True, True)
    # Alter position 1 as a superuser would: show says the hash no longer matches.
    intruder = Attacker(url)
    intruder.run("UPDATE ledger_events SET originator_version = 9 WHERE position = 1")
    intruder.close()
    tampered = _json(["show", "1", "--json"])
    assert isinstance(tampered, dict)
    assert (tampered["hash_recomputed"], tampered["links_to_previous"]) == (False, True)
    missing = CliRunner().invoke(cli, ["show", "3"])
    assert missing.exit_code == 2
    assert missing.output == "Error: there is no event at position 3; the log holds 0..2\n"


def test_history_and_the_record_as_of_a_time(recorded: str, store: ChainStore) -> None:
    events = _json(["history", "deployment/CHG-1001", "--format", "json"])
    assert isinstance(events, list)
    assert [(e["version"], e["event_type"], e["actor"]) for e in events] == [
        (1, "Deployment.Requested", "alice"),
        (2, "Deployment.Approved", "bob"),
        (3, "Deployment.Started", "ops"),
    ]
    # As of just after the approval was recorded: approved, not started.
    approval = store.record_at(1)
    assert approval is not None
    as_of = micros_to_datetime(approval.recorded_at_us).isoformat()
    result = CliRunner().invoke(cli, ["history", recorded, "--format", "json", "--as-of", as_of])
    assert result.exit_code == 0, result.output
    state = json.loads(result.output.split("(version 2):\n", 1)[1])
    assert (state["status"], state["approver"], state["requester"], state["version"]) == (
        "approved",
        "bob",
        "alice",
        2,
    )
    unknown = CliRunner().invoke(cli, ["history", "nope"])
    assert unknown.exit_code == 2
    assert unknown.output == (
        "Error: aggregate 'nope' is neither an id (a UUID) nor KIND/KEY like order/ORD-1\n"
    )
