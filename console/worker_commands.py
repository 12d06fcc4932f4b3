"""``regledger worker``: run the stream workers, against a broker or the bundled one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ledger import LedgerError
from streams.broker import BrokerStartError, bundled_broker
from streams.relay import RelayBatch
from streams.settings import ROLES, StreamSettings
from streams.topics import TopicError, ensure_topics

from .errors import CommandError
from .options import require_schema

__all__ = ["worker_command"]


@contextmanager
def _broker(settings: StreamSettings) -> Iterator[str]:
    if settings.broker_url is not None:
        yield settings.broker_url
        return
    try:
        with bundled_broker() as url:
            click.echo(
                f"REGLEDGER_BROKER_URL is not set: started the bundled Tansu broker at {url} "
                "(memory only: its topics go when it stops)",
                err=True,
            )
            yield url
    except BrokerStartError as exc:
        raise CommandError(f"{exc}; or set REGLEDGER_BROKER_URL to a running broker") from exc


def _run_one(role: str, settings: StreamSettings, url: str) -> None:
    from streams import agents  # loads Faust: only when a worker runs

    click.echo(f"worker {role}: broker {url}, group {settings.group_of(role)}", err=True)
    if role == "relay":
        sent = {"batches": 0, "events": 0}

        def on_batch(batch: RelayBatch) -> None:
            sent["batches"] += 1
            sent["events"] += batch.count

        agents.run_relay(settings, url, on_batch)
        click.echo(
            f"worker relay stopped: {sent['events']:,} events in {sent['batches']:,} batches",
            err=True,
        )
        return
    agents.run_faust(agents.FAUST_ROLES[role](settings, url), settings.log_level)


def _supervise(roles: list[str], url: str) -> None:
    """One process per role; stop them all on SIGINT/SIGTERM or when one of them exits."""
    env = {**os.environ, "REGLEDGER_BROKER_URL": url}
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = {"signal": False}

    def stop(*_: object) -> None:
        stopping["signal"] = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    failed: tuple[str, int] | None = None
    try:
        for role in roles:
            command = [sys.executable, "-m", "console.cli", "worker", role]
            children[role] = subprocess.Popen(command, env=env)  # noqa: S603 - ourselves
            click.echo(f"started worker {role} (pid {children[role].pid})", err=True)
        while not stopping["signal"] and failed is None:
            for role, child in children.items():
                if child.poll() is not None:
                    failed = (role, child.returncode)
                    break
            time.sleep(0.2)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed is not None:
        raise CommandError(
            f"worker {failed[0]} exited with status {failed[1]}, so every worker was stopped; "
            "its error is above. Fix it and start `regledger worker` again"
        )
    click.echo(f"stopped {len(children)} workers: {', '.join(children)}", err=True)


@click.command("worker")
@click.argument("roles", nargs=-1, type=click.Choice([*ROLES, "all"]))
def worker_command(roles: tuple[str, ...]) -> None:
    """Run stream workers until Ctrl-C: relay, ingestion, slo, guard, indicators (default:
    all).

    relay sends the ledger to ledger.events; ingestion records audit.* messages in the
    ledger (rejects to audit.dlq); slo turns telemetry.requests into SLO windows, alerts
    (slo.alerts) and breaches; guard rolls back canary, blue-green and shadow deployments
    that breach their thresholds; indicators turns market.ticks into 1 s and 1 min bars and
    their indicator snapshots (indicator_values, indicators.values; rejects to
    market.dlq). Several roles run as one process each.

    The broker is REGLEDGER_BROKER_URL; unset, the bundled Tansu broker starts on a free
    loopback port (memory only). Topics are created first, one partition each.

    Example:

        regledger worker

        REGLEDGER_BROKER_URL=kafka://127.0.0.1:9092 regledger worker ingestion slo
    """
    try:
        settings = StreamSettings.from_env()
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    require_schema(settings.ledger)
    selected = list(ROLES) if not roles or "all" in roles else list(dict.fromkeys(roles))
    with _broker(settings) as url:
        try:
            created = ensure_topics(url)
        except (TopicError, OSError) as exc:
            raise CommandError(f"{exc}; check REGLEDGER_BROKER_URL and the broker") from exc
        except Exception as exc:  # aiokafka's connection errors
            raise CommandError(
                f"cannot reach the broker at {url} ({type(exc).__name__}: {exc}); "
                "check REGLEDGER_BROKER_URL and that the broker is up"
            ) from exc
        if created:
            click.echo(f"created topics: {', '.join(created)}", err=True)
        if len(selected) == 1:
            _run_one(selected[0], settings, url)
        else:
            _supervise(selected, url)
