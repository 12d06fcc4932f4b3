"""A Faust worker that reads ``ledger.events`` through the app factory and the codec.

    python -m tests.support.stream_faust_reader BROKER_URL TOPIC GROUP OUT

Joins consumer group GROUP with test-sized timeouts (the production defaults make a join
wait tens of seconds). Each message is decoded by the ``ledger_event`` codec and goes
through ``ContinuityChecker``: the position of every new one is appended to OUT, one per
line (flushed), ``dup N`` for a duplicate. Runs until terminated (SIGTERM).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import faust

from streams.app import LEDGER_EVENT_CODEC, make_app
from streams.relay import ContinuityChecker


def main(broker_url: str, topic_name: str, group: str, out: Path) -> None:
    app = make_app(
        broker_url,
        id=group,
        broker_rebalance_timeout=1.0,
        broker_session_timeout=1.0,
        broker_heartbeat_interval=0.1,
    )
    topic = app.topic(topic_name, key_type=bytes, value_serializer=LEDGER_EVENT_CODEC)
    checker = ContinuityChecker()
    sink = out.open("a", encoding="utf-8")  # closed when the worker stops

    @app.agent(topic)
    async def read(stream: Any) -> None:
        async for message in stream:
            line = str(message.position) if checker.accept(message) else f"dup {message.position}"
            sink.write(line + "\n")
            sink.flush()

    try:
        faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
    finally:
        sink.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
