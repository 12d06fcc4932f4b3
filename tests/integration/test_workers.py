"""`regledger worker` end to end, on the bundled broker and a real PostgreSQL ledger.

A CANARY deployment of trading-api 4.2.0 (baseline 4.1.0, promoted before) is started;
then 66 minutes of request telemetry arrive in which the candidate fails 10 % of its
requests (5 % of all). With every role running (`regledger worker`, one process per role):

* the guard rolls the canary back once, ERROR_RATE, with its evidence in the ledger;
* the SLO worker writes every minute's window and records each burn-rate rule that fires,
  once per episode, in the ledger and on ``slo.alerts``;
* ingestion records an audit message once although it was sent twice, and sends a poison
  message to ``audit.dlq`` unchanged, with the field and the error in its headers;
* the relay puts every ledger position on ``ledger.events``, links intact.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.application import AuditTrail
from ledger import Settings
from ledger.factory import application_env
from projections.core import decoder
from streams.broker import bundled_broker
from streams.codecs import decode_ledger_event
from streams.relay import ContinuityChecker
from streams.topics import ensure_topics
from tests.support.databases import ledger_url
from tests.support.deployments import deploy_canary
from tests.support.stream_topics import produce, read_topic, records, until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTES = 66
TICKET = "CHG-2001"


def _telemetry() -> list[bytes]:
    """Every 10 s (the guard's bucket), 10 baseline and 10 candidate requests; the first
    candidate one fails: 10 % of the candidate's, 5 % of all requests, in any window."""
    out = []
    for bucket in range(MINUTES * 6):
        for i in range(20):
            candidate = i % 2 == 1
            out.append(
                json.dumps(
                    {
                        "service": "trading-api",
                        "endpoint": "/orders",
                        "latency_ms": 40,
                        "status": 503 if i == 1 else 200,
                        "time": (T0 + timedelta(seconds=bucket * 10 + i * 0.5)).isoformat(),
                        "version": "4.2.0" if candidate else "4.1.0",
                    }
                ).encode()  # fmt: skip
            )
    return out


def _user_action(source_event_id: str) -> bytes:
    return json.dumps({
        "source_event_id": source_event_id,
        "command": "record_user_action",
        "fields": {"action_id": "UA-1", "action": "LOGIN", "target": "console", "details": {},
                   "actor": "alice", "occurred_at": T0.isoformat()},
    }).encode()  # fmt: skip


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with bundled_broker() as url:
        yield url


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with ledger_url("postgres", tmp_path) as url:
        trail = AuditTrail(env=application_env(Settings(database_url=url)))
        try:
            deploy_canary(trail, at=T0, baseline="CHG-2000", canary=TICKET)
        finally:
            trail.close()
        yield url


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(sql.encode()).fetchall()


def _payloads(url: str, topic: str) -> list[dict[str, Any]]:
    rows = _rows(url, f"SELECT state FROM ledger_events WHERE topic = '{topic}' ORDER BY position")
    return [decoder().decode(bytes(state)) for (state,) in rows]


def test_a_canary_that_breaches_its_slo_is_rolled_back_and_everything_is_recorded(
    broker: str, database: str
) -> None:
    ensure_topics(broker)
    env = {
        **os.environ,
        "REGLEDGER_DATABASE_URL": database,
        "REGLEDGER_BROKER_URL": broker,
        "REGLEDGER_STREAMS_GROUP": "e2e",
        "REGLEDGER_STREAMS_REBALANCE_TIMEOUT": "1",
    }
    worker = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "console.cli", "worker"], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        produce(broker, "telemetry.requests", _telemetry())
        produce(
            broker, "audit.activity", [_user_action("ua-1"), b"{not json", _user_action("ua-1")]
        )

        rollback = until(
            lambda: _payloads(database, "domain.deployments:Rollback.Executed"), "the rollback"
        )
        breaches = until(
            lambda: (
                len(found := _payloads(database, "domain.reliability:SloBreach.Recorded")) >= 6
                and found
            ),
            "six SLO breaches",
        )
        until(
            lambda: (
                _rows(database, "SELECT sum(total) FROM slo_windows WHERE endpoint = '*'")
                == [(MINUTES * 120,)]
            ),
            "every minute window",
        )
        users = until(lambda: _payloads(database, "domain.activity:UserAction.Recorded"), "ingest")
        dead = until(lambda: records(broker, "audit.dlq"), "the dead letter")
        alerts = until(lambda: len(found := records(broker, "slo.alerts")) >= 6 and found, "alerts")
        time.sleep(3)  # anything recorded twice would show up by now
    finally:
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=60)[0].decode()
    assert worker.returncode == 0, output
    assert "stopped 5 workers: relay, ingestion, slo, guard, indicators" in output

    # The guard: one rollback, ERROR_RATE, level 1, with its evidence.
    [rollback] = _payloads(database, "domain.deployments:Rollback.Executed")
    assert (rollback["rollback_id"], rollback["trigger"], rollback["level"]) == (
        f"RB-{TICKET}", "ERROR_RATE", 1,
    )  # fmt: skip
    assert re.fullmatch(
        r"canary error rate 10 % over [1-9][0-9]*0 requests \(threshold 1 %\)", rollback["reason"]
    )
    evidence = rollback["evidence"]
    assert (evidence["baseline_version"], evidence["candidate_version"]) == ("4.1.0", "4.2.0")
    assert (evidence["strategy"], evidence["threshold"]) == ("CANARY", "> 1")
    assert _rows(database, "SELECT count(*) FROM ledger_events WHERE topic = "
                 "'domain.deployments:Deployment.RolledBack'") == [(1,)]  # fmt: skip

    # The SLO worker: each (SLO, rule) once; 5 % of requests failed in every minute.
    breaches = _payloads(database, "domain.reliability:SloBreach.Recorded")
    assert Counter((b["slo"], b["rule"]) for b in breaches) == {
        (slo, rule): 1
        for slo in ("trading-api-availability", "trading-api-error-rate")
        for rule in ("page-1h", "page-6h", "ticket-3d")
    }
    burn = {"trading-api-availability": Decimal("100"), "trading-api-error-rate": Decimal("50")}
    for breach in breaches:
        assert Decimal(breach["burn_rate_long"]) == burn[breach["slo"]]
        assert Decimal(breach["sli_long"]) == Decimal("0.95")
    windows = _rows(
        database,
        "SELECT count(*), min(total), max(total), sum(errors) FROM slo_windows "
        "WHERE service = 'trading-api' AND endpoint = '*'",
    )
    assert windows == [(MINUTES, 120, 120, MINUTES * 6)]
    assert sorted(json.loads(a.value)["rule"] for a in alerts) == sorted(
        ["page-1h", "page-6h", "ticket-3d"] * 2
    )

    # Ingestion: once, although sent twice; the poison message as it was sent.
    assert [u["action_id"] for u in users] == ["UA-1"]
    assert _rows(database, "SELECT source_event_id FROM ledger_sources") == [("ua-1",)]
    [letter] = dead
    assert letter.value == b"{not json"
    assert letter.headers["regledger-field"] == b"message"
    assert letter.headers["regledger-topic"] == b"audit.activity"
    assert letter.headers["regledger-offset"] == b"1"

    # The relay: every position once, in order, each linked to the one before.
    head = _rows(database, "SELECT max(position) FROM ledger_events")[0][0]
    checker = ContinuityChecker()
    relayed = [decode_ledger_event(r.value) for r in read_topic(broker, "ledger.events")]
    assert [m.position for m in checker.new(relayed)] == list(range(head + 1))
