"""The indicators worker's core: ``market.ticks`` -> OHLCV bars -> indicator snapshots.

Synchronous and broker-free, like the other workers' cores: the Faust agent
(:func:`streams.agents.indicators_app`) hands it batches of records and keeps what it
returns in the worker's changelog-backed table.

Per batch (:meth:`IndicatorCore.process`):

1. every record is decoded (:func:`streams.bars.decode_tick`) and added to its symbol's
   open bars (:class:`streams.bars.BarBook`); a bad tick, or a late one, is a
   :class:`~streams.messages.Rejection` for ``market.dlq``, naming the field and why;
2. each bar a tick closes goes to its series (symbol, timeframe), which computes every
   indicator of the catalogue for that bar in O(1) (:class:`streams.indicators.Series`);
3. the snapshots are written to ``indicator_values`` in one transaction, before the
   batch is acknowledged. A snapshot whose bar is already stored writes nothing; if the
   stored one has another hash (the catalogue's parameters changed between two runs, say)
   it is reported in ``conflicts``, and the stored one, which a decision may cite, stays.

What survives a restart or a rebalance (the agent keeps it in its changelog table,
written before the batch's offsets are committed):

* every closed bar of the current UTC day, per series: TA-Lib's streaming handles cannot
  be pickled, so :meth:`IndicatorCore.restore` opens them again by replaying those bars,
  which gives the values the handles had, exactly (a series starts afresh each UTC day);
* each symbol's open bars together with the offset of the last tick of that symbol they
  hold, in one entry, so the two never disagree (the agent adds, per timeframe, the last
  bar whose snapshot the broker acknowledged: :meth:`IndicatorCore.unpublished` gives what
  to publish again after a restart, since snapshots are published without waiting). A
  redelivered tick (offset at or below its symbol's) is skipped, so no tick counts twice
  in a bar; a bar closed again by ticks past it is the bar already applied, and is skipped
  too. A redelivered bad or late tick is rejected again: dead letters are at least once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ledger.factory import open_store
from ledger.settings import Settings
from ledger.sqlfiles import queries
from ledger.views import Column, Kind, Row, TableSpec, ViewSession

from .bars import Bar, BarBook, TickError, decode_tick
from .indicators import IndicatorConfig, Series, Snapshot
from .messages import RawMessage, Rejection

__all__ = [
    "INDICATOR_VALUES",
    "IndicatorBatch",
    "IndicatorCore",
    "bar_key",
    "snapshot_row",
    "stored_snapshots",
]

INDICATOR_VALUES = TableSpec(
    "indicator_values",
    (
        Column("symbol", Kind.TEXT),
        Column("timeframe", Kind.TEXT),
        Column("bar_key", Kind.TEXT),
        Column("bar_time", Kind.TIME),
        Column("snapshot_hash", Kind.TEXT),
        Column("snapshot", Kind.TEXT),
    ),
    ("symbol", "timeframe", "bar_key"),
)
# Up to the hash: what _write compares, without the ~4 KB snapshot text of each row.
_STORED = TableSpec("indicator_values", INDICATOR_VALUES.columns[:5], INDICATOR_VALUES.key)


def bar_key(start: datetime) -> str:
    """A bar's start as the table's text key: ``YYYY-MM-DDTHH:MM:SSZ`` (bars start on
    whole seconds).

    >>> from datetime import UTC
    >>> bar_key(datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC))
    '2026-03-02T09:00:01Z'
    """
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_snapshots(session: ViewSession, snapshot_hash: str) -> list[Row]:
    """The ``indicator_values`` rows filed under ``snapshot_hash`` (a decision's lineage
    hash), each with ``intact``: whether its stored bytes still hash to it."""
    sql = queries(session.backend, "streams")["indicator_values_by_hash"]
    rows = session.query(INDICATOR_VALUES, sql, {"hash": snapshot_hash})
    for row in rows:
        actual = hashlib.sha256(row["snapshot"].encode("utf-8")).hexdigest()
        row["intact"] = actual == row["snapshot_hash"]
    return rows


def snapshot_row(snapshot: Snapshot, canonical: bytes) -> Row:
    """The ``indicator_values`` row of ``snapshot``, given its canonical bytes (encoded
    once by the caller, which also publishes them) and their hash."""
    return {
        "symbol": snapshot.symbol,
        "timeframe": snapshot.timeframe,
        "bar_key": bar_key(snapshot.bar_time),
        "bar_time": snapshot.bar_time,
        "snapshot_hash": hashlib.sha256(canonical).hexdigest(),
        "snapshot": canonical.decode("ascii"),
    }


@dataclass
class IndicatorBatch:
    """What one :meth:`IndicatorCore.process` call did."""

    ticks: int = 0  # ticks added to bars
    skipped: int = 0  # ticks at or below their symbol's offset: applied before
    rejected: list[Rejection] = field(default_factory=list)  # bad or late: market.dlq
    bars: list[Bar] = field(default_factory=list)  # closed and applied: keep them
    snapshots: list[Snapshot] = field(default_factory=list)  # of those bars, in order
    canonical: list[bytes] = field(default_factory=list)  # their bytes (encoded once)
    written: int = 0  # snapshots inserted into indicator_values
    conflicts: list[tuple[Snapshot, str]] = field(default_factory=list)  # (ours, stored hash)
    # The symbols whose bars moved: their open bars and the offset of their last tick.
    open_bars: dict[str, tuple[int, list[Bar]]] = field(default_factory=dict)
    expired: list[Bar] = field(default_factory=list)  # closed bars of a finished UTC day


class IndicatorCore:
    """Bars and indicators of every symbol the worker sees, and their table.

    Owns a store and a view session (close it, or use ``with``).
    """

    def __init__(self, settings: Settings, config: IndicatorConfig | None = None) -> None:
        self.config = IndicatorConfig.load() if config is None else config
        self.book = BarBook()
        self.series: dict[tuple[str, str], Series] = {}
        self.day_bars: dict[tuple[str, str], list[Bar]] = {}  # the current day's, per series
        self.offsets: dict[str, int] = {}  # per symbol: the last tick offset in its bars
        self._store = open_store(settings)
        try:
            self._session = self._store.view_session()
        except BaseException:
            self._store.close()
            raise
        self._sql = queries(self._session.backend, "streams")

    def close(self) -> None:
        try:
            self._session.close()
        finally:
            self._store.close()

    def __enter__(self) -> IndicatorCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- restore ---------------------------------------------------------------------------

    def restore(
        self, closed: Iterable[Bar], open_bars: Mapping[str, tuple[int, Sequence[Bar]]]
    ) -> int:
        """Rebuild the series from their closed bars (any order; only each series' last UTC
        day counts) and each symbol's (offset, open bars). Returns the bars replayed."""
        by_series: dict[tuple[str, str], list[Bar]] = {}
        for bar in closed:
            by_series.setdefault((bar.symbol, bar.timeframe), []).append(bar)
        self.series.clear()
        self.day_bars.clear()
        replayed = 0
        for (symbol, timeframe), bars in by_series.items():
            bars.sort(key=lambda b: b.start)
            day = bars[-1].start.date()
            today = [b for b in bars if b.start.date() == day]
            series, _ = Series.rebuild(self.config.specs_for(symbol), symbol, timeframe, today)
            self.series[symbol, timeframe] = series
            self.day_bars[symbol, timeframe] = today
            replayed += len(today)
        self.book = BarBook.restore(bar for _, bars in open_bars.values() for bar in bars)
        self.offsets = {symbol: offset for symbol, (offset, _) in open_bars.items()}
        return replayed

    def unpublished(
        self, published: Mapping[tuple[str, str], str | None]
    ) -> list[tuple[str, str, str, bytes]]:
        """The stored snapshots of each restored series after the last bar whose publication
        was acknowledged (``published``: bar key per (symbol, timeframe), None for none),
        from the series' day on: (symbol, timeframe, bar key, bytes), to publish again."""
        again: list[tuple[str, str, str, bytes]] = []
        for (symbol, timeframe), today in sorted(self.day_bars.items()):
            since = bar_key(today[0].start.replace(hour=0, minute=0, second=0))
            rows = self._session.query(
                INDICATOR_VALUES,
                self._sql["indicator_values_after"],
                {
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "after": published.get((symbol, timeframe)) or "",
                    "since": since,
                },
            )
            again += [(symbol, timeframe, r["bar_key"], r["snapshot"].encode()) for r in rows]
        return again

    # --- process ---------------------------------------------------------------------------

    def process(self, records: Sequence[RawMessage]) -> IndicatorBatch:
        """Apply ``records`` (in offset order) once each; write their bars' snapshots."""
        batch = IndicatorBatch()
        touched: set[str] = set()
        offsets = self.offsets
        for record in records:
            try:
                tick = decode_tick(record.value)
            except TickError as exc:
                batch.rejected.append(Rejection(record, exc.field, str(exc)))
                continue
            if record.offset <= offsets.get(tick.symbol, -1):
                batch.skipped += 1
                continue
            try:
                closed = self.book.add(tick)
            except TickError as exc:  # LateTick: it changed nothing
                batch.rejected.append(Rejection(record, exc.field, str(exc)))
                continue
            offsets[tick.symbol] = record.offset
            batch.ticks += 1
            touched.add(tick.symbol)
            for bar in closed:
                self._apply(bar, batch)
        for bar in self.book.open_bars(touched):
            batch.open_bars.setdefault(bar.symbol, (offsets[bar.symbol], []))[1].append(bar)
        if batch.snapshots:
            self._write(batch)
        return batch

    def _apply(self, bar: Bar, batch: IndicatorBatch) -> None:
        key = (bar.symbol, bar.timeframe)
        series = self.series.get(key)
        today = self.day_bars.setdefault(key, [])
        if today and bar.start <= today[-1].start:
            return  # closed again by redelivered ticks: applied before
        if today and bar.start.date() != today[-1].start.date():
            batch.expired.extend(today)  # a new UTC day: the series starts afresh
            today.clear()
        if series is None:
            series = self.series[key] = Series(self.config.specs_for(bar.symbol), *key)
        batch.snapshots.append(series.update(bar))
        batch.bars.append(bar)
        today.append(bar)

    def _write(self, batch: IndicatorBatch) -> None:
        batch.canonical = [s.canonical() for s in batch.snapshots]
        rows = [snapshot_row(s, c) for s, c in zip(batch.snapshots, batch.canonical, strict=True)]
        since = min(s.bar_time for s in batch.snapshots)
        with self._session.transaction():
            stored = {
                INDICATOR_VALUES.key_of(row): row["snapshot_hash"]
                for row in self._session.query(
                    _STORED, self._sql["indicator_values_from"], {"since": since}
                )
            }
            new: list[Row] = []
            for snapshot, row in zip(batch.snapshots, rows, strict=True):
                existing = stored.get(INDICATOR_VALUES.key_of(row))
                if existing is None:
                    new.append(row)
                elif existing != row["snapshot_hash"]:
                    batch.conflicts.append((snapshot, existing))
            self._session.insert(INDICATOR_VALUES, new)
        batch.written = len(new)
