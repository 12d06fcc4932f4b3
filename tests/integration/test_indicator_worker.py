"""The indicators worker's core on a real database: ticks in, bars and snapshots out,
exactly once, equal to TA-Lib's batch functions, across a restart (both backends)."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from domain.application import AuditTrail
from ledger import Settings, open_store
from ledger.factory import application_env
from ledger.store import ChainStore
from streams.bars import Bar
from streams.indicator_worker import INDICATOR_VALUES, IndicatorBatch, IndicatorCore, bar_key
from streams.indicators import IndicatorConfig, Snapshot, batch_values
from streams.messages import RawMessage, Rejection
from tests.support.databases import ledger_url, superuser_connection

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SYMBOLS = ("DE0007164600", "US0378331005")
CONFIG = IndicatorConfig.load()


def tick(symbol: str, when: datetime, price: float, size: float = 10.0, **change: object) -> bytes:
    document: dict[str, object] = {
        "symbol": symbol, "bid": round(price - 0.01, 2), "ask": round(price + 0.01, 2),
        "last": price, "size": size, "time": when.isoformat().replace("+00:00", "Z"),
    }  # fmt: skip
    document.update(change)
    return json.dumps(document).encode()


def session(seconds: int, per_second: int = 4, seed: int = 7) -> list[bytes]:
    """Ticks of both symbols for ``seconds`` of event time, a random walk each."""
    rng = random.Random(seed)
    price = {s: 100.0 + 50 * i for i, s in enumerate(SYMBOLS)}
    out = []
    for step in range(seconds * per_second):
        when = T0 + timedelta(seconds=step / per_second)
        for symbol in SYMBOLS:
            price[symbol] = round(price[symbol] * math.exp(rng.gauss(0, 0.002)), 2)
            out.append(tick(symbol, when, price[symbol], float(rng.randint(1, 50))))
    return out


def raw(values: list[bytes], first: int = 0) -> list[RawMessage]:
    return [RawMessage("market.ticks", 0, first + i, None, v) for i, v in enumerate(values)]


@pytest.fixture
def core(url: str) -> Iterator[IndicatorCore]:
    with IndicatorCore(Settings(database_url=url), CONFIG) as opened:
        yield opened


def stored(store: ChainStore) -> dict[tuple[str, str, str], str]:
    with store.view_session() as s:
        return {INDICATOR_VALUES.key_of(r): r["snapshot_hash"] for r in s.scan(INDICATOR_VALUES)}


def run(core: IndicatorCore, records: list[RawMessage], size: int = 500) -> list[IndicatorBatch]:
    return [core.process(records[i : i + size]) for i in range(0, len(records), size)]


def test_ticks_become_bars_and_snapshots_equal_to_talib_batch(
    core: IndicatorCore, store: ChainStore
) -> None:
    records = raw(session(130))  # 130 s: 129 closed 1 s bars and 2 closed 1 min bars a symbol
    batches = run(core, records)
    snapshots = [s for b in batches for s in b.snapshots]
    assert sum(b.ticks for b in batches) == len(records) == 1040
    assert sum(len(b.rejected) for b in batches) == 0
    counts = {(s.symbol, s.timeframe) for s in snapshots}
    assert counts == {(sym, tf) for sym in SYMBOLS for tf in ("1s", "1m")}
    assert len(snapshots) == 2 * (129 + 2)
    assert sum(b.written for b in batches) == len(snapshots)
    # Every stored row is a snapshot the worker computed, by its hash, and nothing else.
    rows = stored(store)
    assert len(rows) == len(snapshots)
    assert sorted(rows.values()) == sorted(s.hash for s in snapshots)

    # Streamed values are TA-Lib's batch values over the same bars, exactly.
    bars = [b for batch in batches for b in batch.bars]
    for symbol in SYMBOLS:
        mine = [b for b in bars if b.symbol == symbol and b.timeframe == "1s"]
        series = [s for s in snapshots if s.symbol == symbol and s.timeframe == "1s"]
        expected = batch_values(CONFIG.specs_for(symbol), mine)
        for i, snapshot in enumerate(series):
            assert snapshot.values == {name: column[i] for name, column in expected.items()}
        assert series[-1].values["SMA"] is not None  # past the lookbacks: real values


def test_a_restart_continues_with_identical_snapshots(
    core: IndicatorCore, backend: str, tmp_path: Path
) -> None:
    records = raw(session(90))
    whole = [s.hash for b in run(core, records) for s in b.snapshots]
    with ledger_url(backend, tmp_path) as fresh_url:
        first = IndicatorCore(Settings(database_url=fresh_url), CONFIG)
        cut = 333  # mid-bar, mid-batch
        before = run(first, records[:cut], size=100)
        first.close()
        # What the agent's changelog table keeps: the day's closed bars, and per symbol its
        # open bars with the offset of its last tick (the latest entry of each symbol).
        closed: list[Bar] = [bar for b in before for bar in b.bars]
        open_bars = {s: entry for b in before for s, entry in b.open_bars.items()}
        assert {s: offset for s, (offset, _) in open_bars.items()} == {
            SYMBOLS[0]: cut - 1, SYMBOLS[1]: cut - 2,
        }  # fmt: skip
        again = IndicatorCore(Settings(database_url=fresh_url), CONFIG)
        try:
            assert again.restore(closed, open_bars) == len(closed)
            # The broker redelivers from before the cut: those ticks are skipped.
            after = run(again, records[cut - 150 :], size=100)
        finally:
            again.close()
        assert sum(b.skipped for b in after) == 150
        hashes = [s.hash for b in [*before, *after] for s in b.snapshots]
        assert hashes == whole
        with open_store(Settings(database_url=fresh_url)) as fresh_store:
            assert sorted(stored(fresh_store).values()) == sorted(whole)


def test_bad_and_late_ticks_are_rejected_by_name_and_change_nothing(
    core: IndicatorCore, store: ChainStore
) -> None:
    s = SYMBOLS[0]
    values = [
        tick(s, T0, 100.0),
        tick(s, T0 + timedelta(seconds=1), 101.0),  # closes 09:00:00
        tick(s, T0 + timedelta(seconds=1.5), 100.5, last="abc"),
        tick(s, T0 + timedelta(seconds=1.6), 100.5, time="2026-03-02T09:00:01"),
        tick(s, T0 + timedelta(seconds=0.5), 99.0),  # late: its 1 s bar is closed
        tick(s, T0 + timedelta(seconds=2), 102.0),  # closes 09:00:01
    ]
    records = raw(values)
    batch = core.process(records)
    assert [(r.message.offset, r.field, r.error) for r in batch.rejected] == [
        (2, "last", "last='abc' is not a number"),
        (3, "time", "time='2026-03-02T09:00:01' has no UTC offset; add one (Z for UTC)"),
        (4, "time", "time='2026-03-02T09:00:00.500000Z' is late: the 1s bar "
         "2026-03-02T09:00:00Z of DE0007164600 is closed"),
    ]  # fmt: skip
    assert all(isinstance(r, Rejection) for r in batch.rejected)
    assert [(b.start.second, b.open, b.close, b.volume, b.ticks) for b in batch.bars] == [
        (0, 100.0, 100.0, 10.0, 1),
        (1, 101.0, 101.0, 10.0, 1),
    ]
    assert len(stored(store)) == 2


def test_a_redelivered_batch_writes_nothing_and_a_changed_snapshot_is_reported(
    url: str, core: IndicatorCore, store: ChainStore
) -> None:
    records = raw(session(5))
    first = core.process(records)
    assert first.written == 2 * 4  # 4 closed 1 s bars a symbol
    # The same records again (a restart that lost nothing): skipped, nothing written.
    again = core.process(records)
    assert (again.ticks, again.skipped, again.written, again.snapshots) == (0, 40, 0, [])
    # Another core with other parameters recomputes those bars: its snapshots differ; the
    # stored ones, which a decision may cite, stay.
    other = IndicatorConfig.parse({"defaults": {"SMA": {"timeperiod": 2}}})
    with IndicatorCore(Settings(database_url=url), other) as changed:
        result = changed.process(records)
    assert result.written == 0
    assert [(s.symbol, s.bar_time.second) for s, _ in result.conflicts] == [
        (sym, second) for second in range(4) for sym in SYMBOLS
    ]
    assert sorted(stored(store).values()) == sorted(s.hash for s in first.snapshots)


def test_indicators_show_finds_a_snapshot_by_hash_and_checks_it(
    url: str, core: IndicatorCore, store: ChainStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot: Snapshot = core.process(raw(session(3))).snapshots[0]
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["indicators", "show", snapshot.hash, "--json"])
    assert result.exit_code == 0, result.output
    [shown] = json.loads(result.output)
    assert shown["hash"] == snapshot.hash == hashlib.sha256(snapshot.canonical()).hexdigest()
    assert (shown["symbol"], shown["timeframe"], shown["bar_time"], shown["intact"]) == (
        snapshot.symbol, "1s", "2026-03-02T09:00:00Z", True,
    )  # fmt: skip
    assert shown["snapshot"] == snapshot.canonical().decode()
    missing = CliRunner().invoke(cli, ["indicators", "show", "ab" * 32])
    assert missing.exit_code == 2
    assert missing.output.startswith(f"Error: no indicator snapshot has hash {'ab' * 32}")
    bad = CliRunner().invoke(cli, ["indicators", "show", "xyz"])
    assert bad.exit_code == 2
    assert "is not a SHA-256 in hex" in bad.output


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_indicators_show_and_lineage_report_a_changed_snapshot(
    url: str, core: IndicatorCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = core.process(raw(session(3))).snapshots[0]
    trail = AuditTrail(env=application_env(Settings(database_url=url)))
    try:
        trail.make_trade_decision(
            decision_id="DEC-1", model_id="momentum", model_version="2.1.0",
            strategy="momentum", isin=snapshot.symbol, signal="BUY", confidence="0.7",
            lineage_hash=snapshot.hash, actor="momentum-v2", occurred_at=T0,
        )  # fmt: skip
    finally:
        trail.close()
    monkeypatch.setenv("REGLEDGER_DATABASE_URL", url)
    assert CliRunner().invoke(cli, ["projections", "run"]).exit_code == 0
    lineage = CliRunner().invoke(cli, ["lineage", "DEC-1", "--json"])
    assert lineage.exit_code == 0, lineage.output
    assert json.loads(lineage.output)["indicator_snapshots"] == [
        {"decision_id": "DEC-1", "symbol": snapshot.symbol, "timeframe": "1s",
         "bar_time": "2026-03-02T09:00:00Z", "hash": snapshot.hash, "intact": True},
    ]  # fmt: skip
    # Someone edits the stored value: both commands say so, and show exits 1.
    with superuser_connection(url) as db:
        db.execute(
            "UPDATE indicator_values SET snapshot = replace(snapshot, '\"close\":', "
            "'\"close\":1') WHERE snapshot_hash = %s",
            (snapshot.hash,),
        )
    shown = CliRunner().invoke(cli, ["indicators", "show", snapshot.hash])
    assert shown.exit_code == 1
    assert shown.output.startswith(
        f"{snapshot.symbol} 1s bar 2026-03-02T09:00:00Z: CHANGED: its stored bytes hash to "
    )
    lineage = CliRunner().invoke(cli, ["lineage", "DEC-1"])
    assert f"indicator snapshot {snapshot.hash}" in lineage.output
    assert "CHANGED" in lineage.output


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_snapshots_are_compressed_with_lz4_where_the_server_has_it(url: str) -> None:
    with superuser_connection(url) as db:
        row = db.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'indicator_values'::regclass AND attname = 'snapshot'"
        ).fetchone()
        built_with_lz4 = db.execute(
            "SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals)"
        ).fetchone()
    assert row is not None and built_with_lz4 is not None
    assert row[0] == ("l" if built_with_lz4[0] else "")


def test_after_a_restart_what_was_not_acknowledged_is_published_again(
    url: str, core: IndicatorCore
) -> None:
    batches = run(core, raw(session(6)), size=16)
    snapshots = [s for b in batches for s in b.snapshots]
    closed = [bar for b in batches for bar in b.bars]
    open_bars = {s: entry for b in batches for s, entry in b.open_bars.items()}
    with IndicatorCore(Settings(database_url=url), CONFIG) as again:
        again.restore(closed, open_bars)
        # The broker acknowledged DE0007164600's 1 s bars up to 09:00:02 and none of the other
        # symbol's: the rest of the day's snapshots go out again, in bar order per series.
        republish = again.unpublished({(SYMBOLS[0], "1s"): "2026-03-02T09:00:02Z"})
    expected = [
        (s.symbol, s.timeframe, bar_key(s.bar_time), s.canonical())
        for s in sorted(snapshots, key=lambda s: (s.symbol, s.timeframe, s.bar_time))
        if s.symbol != SYMBOLS[0] or s.bar_time.second > 2
    ]
    assert republish == expected
    assert [(r[0], r[2]) for r in republish] == [
        (SYMBOLS[0], "2026-03-02T09:00:03Z"), (SYMBOLS[0], "2026-03-02T09:00:04Z"),
        *((SYMBOLS[1], f"2026-03-02T09:00:0{second}Z") for second in range(5)),
    ]  # fmt: skip
