"""``regledger indicators``: the indicator catalogue, and stored snapshots by their hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ledger import LedgerError, open_store
from streams.indicator_worker import stored_snapshots
from streams.indicators import IndicatorConfig, IndicatorConfigError, IndicatorSpec, Snapshot
from streams.settings import StreamSettings

from .errors import CommandError
from .options import load_settings, require_schema

__all__ = ["indicators_group"]


def _config(path: str | None) -> IndicatorConfig:
    try:
        if path is None:
            path = StreamSettings.from_env().indicators_config
        return IndicatorConfig.load(path)
    except (IndicatorConfigError, LedgerError, OSError) as exc:
        raise CommandError(
            f"{exc}; fix the file, or point --config / REGLEDGER_INDICATORS_CONFIG at another"
        ) from exc


def _spec_json(spec: IndicatorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "group": spec.group,
        "inputs": list(spec.inputs),
        "parameters": dict(spec.params),
        "lookback": spec.lookback,
        "values": list(spec.value_names),
    }


@click.group("indicators")
def indicators_group() -> None:
    """Live indicators: the catalogue the indicators worker computes, and its snapshots.

    Example:

        regledger indicators list --symbol DE0007164600
    """


@indicators_group.command("list")
@click.option("--symbol", help="Apply this symbol's parameter overrides.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="An indicators TOML file (default: REGLEDGER_INDICATORS_CONFIG, else the shipped one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_command(symbol: str | None, config_path: str | None, as_json: bool) -> None:
    """List every indicator computed per closed bar: its TA-Lib group, inputs, parameters,
    lookback (bars before its first value) and the names of its values in a snapshot.

    Example:

        regledger indicators list --symbol DE0007164600 --json
    """
    config = _config(config_path)
    specs = config.specs_for(symbol)
    if as_json:
        document = {
            "symbol": symbol,
            "overridden": symbol is not None and symbol in config.symbols,
            "indicators": [_spec_json(s) for s in specs],
        }
        click.echo(json.dumps(document, indent=2))
        return
    title = f"{len(specs)} indicators" + (f" for {symbol}" if symbol else " (defaults)")
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in ("indicator", "group", "inputs", "parameters", "lookback", "values"):
        table.add_column(column, justify="right" if column == "lookback" else "left")
    for spec in specs:
        table.add_row(
            spec.name,
            spec.group,
            ",".join(spec.inputs),
            " ".join(f"{k}={v}" for k, v in spec.params.items()),
            str(spec.lookback),
            " ".join(spec.value_names),
        )
    Console(width=160).print(table)


@indicators_group.command("show")
@click.argument("snapshot_hash")
@click.option("--json", "as_json", is_flag=True, help="Print the stored snapshot(s) as JSON.")
def show_command(snapshot_hash: str, as_json: bool) -> None:
    """Find the indicator snapshot a trade decision cites by its lineage hash, and check
    that the stored bytes still hash to it (SHA-256 of the canonical JSON).

    Exit status 1 when a stored snapshot does not match its hash.

    Example:

        regledger indicators show 3f0c...e9 --json
    """
    wanted = snapshot_hash.strip().lower()
    if len(wanted) != 64 or any(c not in "0123456789abcdef" for c in wanted):
        raise CommandError(
            f"SNAPSHOT_HASH={snapshot_hash!r} is not a SHA-256 in hex (64 characters 0-9a-f); "
            "give the lineage_hash of a trade decision"
        )
    settings = load_settings()
    require_schema(settings)
    try:
        with open_store(settings) as store, store.view_session() as session:
            rows = stored_snapshots(session, wanted)
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    if not rows:
        raise CommandError(
            f"no indicator snapshot has hash {wanted}; check the hash, or that the indicators "
            "worker wrote to this database (REGLEDGER_DATABASE_URL)"
        )
    broken = [row for row in rows if not row["intact"]]
    if as_json:
        document = [
            {
                "symbol": row["symbol"],
                "timeframe": row["timeframe"],
                "bar_time": row["bar_key"],
                "hash": hashlib.sha256(row["snapshot"].encode("utf-8")).hexdigest(),
                "intact": row["intact"],
                "snapshot": row["snapshot"],  # the bytes as hashed, as a string
            }
            for row in rows
        ]
        click.echo(json.dumps(document, indent=2))
    for row in [] if as_json else rows:
        where = f"{row['symbol']} {row['timeframe']} bar {row['bar_key']}"
        if not row["intact"]:
            actual = hashlib.sha256(row["snapshot"].encode("utf-8")).hexdigest()
            click.echo(f"{where}: CHANGED: its stored bytes hash to {actual}")
            continue
        snapshot = Snapshot.from_canonical(row["snapshot"].encode("ascii"))
        bar = snapshot.bar
        click.echo(f"{where}: intact")
        click.echo(
            f"  bar open {bar.open!r} high {bar.high!r} low {bar.low!r} close {bar.close!r} "
            f"volume {bar.volume!r}"
        )
        ready = {k: v for k, v in snapshot.values.items() if v is not None}
        click.echo(f"  {len(ready)} of {len(snapshot.values)} values (the rest: in lookback)")
        for name, value in ready.items():
            click.echo(f"  {name} = {value!r}")
    if broken:
        raise SystemExit(1)
