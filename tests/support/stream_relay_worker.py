"""A relay in its own process, for the crash test.

    python -m tests.support.stream_relay_worker URL BROKER_URL TOPIC BATCH_SIZE STOP_AT MARKER

Relays the ledger at URL to TOPIC in batches of BATCH_SIZE. Once the STOP_AT-th batch
is sent and acknowledged by the broker, but before its position is advanced, it writes
the batch (JSON) to MARKER and sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ledger import Settings, open_store
from streams.relay import KafkaSender, Relay, RelayBatch


def run_until_killed(
    url: str, broker_url: str, topic: str, batch_size: int, stop_at: int, marker: Path
) -> None:
    sent = 0

    def after_send(batch: RelayBatch) -> None:
        nonlocal sent
        sent += 1
        if sent == stop_at:
            partial = marker.with_suffix(".partial")
            partial.write_text(json.dumps(asdict(batch)))
            partial.replace(marker)  # the test never reads half a file
            time.sleep(600)

    with (
        open_store(Settings(database_url=url, pool_size=1)) as store,
        KafkaSender(broker_url) as sender,
        Relay(store, sender, topic=topic, batch_size=batch_size, after_send=after_send) as relay,
    ):
        relay.run()


if __name__ == "__main__":
    url, broker_url, topic, batch_size, stop_at, marker = sys.argv[1:7]
    run_until_killed(url, broker_url, topic, int(batch_size), int(stop_at), Path(marker))
