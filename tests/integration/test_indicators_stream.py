"""``regledger worker indicators`` against the bundled broker and PostgreSQL.

Ticks of two symbols stream in; the worker is killed (SIGKILL) in the middle of the series
and started again; the rest of the ticks follow. Every stored snapshot must be the one an
uninterrupted run computes (the same bars, the same TA-Lib values, the same hashes), each
once; bad and late ticks reach ``market.dlq`` with the reason; ``indicators.values``
carries the stored snapshots.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streams.bars import BarBook, LateTick, TickError, decode_tick
from streams.broker import bundled_broker
from streams.indicators import IndicatorConfig, Series, Snapshot
from streams.topics import ensure_topics
from tests.integration.test_indicator_worker import SYMBOLS, T0, session, tick
from tests.support.databases import ledger_url
from tests.support.stream_topics import committed, produce, records, start_worker, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with bundled_broker() as url:
        yield url


def _stored(url: str) -> list[tuple[str, str, str, str, str]]:
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute(
            "SELECT symbol, timeframe, bar_key, snapshot_hash, snapshot FROM indicator_values "
            "ORDER BY symbol, timeframe, bar_key"
        ).fetchall()
    return [tuple(r) for r in rows]


def _expected(values: list[bytes]) -> list[Snapshot]:
    """What one uninterrupted run computes from ``values``."""
    config = IndicatorConfig.load()
    book = BarBook()
    series: dict[tuple[str, str], Series] = {}
    out = []
    for value in values:
        try:
            closed = book.add(decode_tick(value))
        except TickError:  # LateTick too
            continue
        for bar in closed:
            key = (bar.symbol, bar.timeframe)
            if key not in series:
                series[key] = Series(config.specs_for(bar.symbol), *key)
            out.append(series[key].update(bar))
    return out


def test_indicators_survive_a_killed_worker_exactly(broker: str, tmp_path: Path) -> None:
    from datetime import timedelta

    ensure_topics(broker)
    ticks = session(150, per_second=5, seed=11)
    bad = tick(SYMBOLS[0], T0 + timedelta(seconds=40), 100.0, bid=101.0, ask=100.5)
    late = tick(SYMBOLS[1], T0 + timedelta(seconds=1), 150.0)  # long closed by then
    first, second = [*ticks[:800], bad], [late, *ticks[800:]]
    expected = _expected([*first, *second])
    with pytest.raises(LateTick):  # the late tick is late in any run
        book = BarBook()
        for value in [*ticks[:800], late]:
            book.add(decode_tick(value))

    with ledger_url("postgres", tmp_path) as url:
        env = {
            **os.environ,
            "REGLEDGER_DATABASE_URL": url,
            "REGLEDGER_BROKER_URL": broker,
            "REGLEDGER_STREAMS_GROUP": "e2e-indicators",
            "REGLEDGER_STREAMS_REBALANCE_TIMEOUT": "1",
            "REGLEDGER_STREAMS_LOG_LEVEL": "info",  # a hang shows where in the log
        }
        log = tmp_path / "worker.log"
        worker = start_worker("indicators", env, log)
        try:
            produce(broker, "market.ticks", first)
            until(lambda: len(_stored(url)) >= 100, "the first snapshots")
            # Killed after an offset commit: the restart resumes from it, so the table must
            # come back whole (the broker lists a changelog's end short: streams.app).
            until(
                lambda: (committed(broker, "e2e-indicators.indicators", "market.ticks") or 0) > 0,
                "an offset commit",
            )
        finally:
            worker.send_signal(signal.SIGKILL)  # no clean shutdown: nothing flushed on exit
            worker.wait(timeout=60)
        worker = start_worker("indicators", env, log)
        try:
            produce(broker, "market.ticks", second)
            until(
                lambda: len(_stored(url)) == len(expected),
                f"every snapshot (worker log: {log})",
                timeout=120,
            )
            time.sleep(3)  # anything written twice, or late, would show by now
        finally:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=60)
        output = log.read_text()
        assert worker.returncode == 0, output
        assert "Traceback" not in output and "Exception in callback" not in output, output
        assert "dead letter market.ticks[0]@800: ask=100.5 is below bid=101.0" in output
        rows = _stored(url)

    want = sorted(
        (s.symbol, s.timeframe, s.bar_time.strftime("%Y-%m-%dT%H:%M:%SZ"), s.hash,
         s.canonical().decode())
        for s in expected
    )  # fmt: skip
    assert rows == want
    assert len(rows) == 2 * (149 + 2)  # 149 closed 1 s bars and 2 closed 1 min bars a symbol

    # Dead letters are at least once: the killed worker may have sent one whose offset it
    # never committed, and the restarted one sends it again, the same.
    dead = list({(r.value, tuple(r.headers)): r for r in records(broker, "market.dlq")}.values())
    assert [(r.value, dict(r.headers)["regledger-field"]) for r in dead] == [
        (bad, b"ask"),
        (late, b"time"),
    ]
    assert dict(dead[1].headers)["regledger-error"] == (
        b"time='2026-03-02T09:00:01Z' is late: the 1s bar 2026-03-02T09:00:01Z of "
        b"US0378331005 is closed"
    )
    published = {r.value for r in records(broker, "indicators.values")}
    assert published == {row[4].encode() for row in rows}
