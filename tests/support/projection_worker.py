"""A projection runner in its own process, for the crash test.

    python -m tests.support.projection_worker URL BATCH_SIZE STOP_AT MARKER

Runs every projection in batches of BATCH_SIZE. In the STOP_AT-th batch, once its rows
are written and its positions advanced but before COMMIT, it writes the batch's report
to MARKER (JSON) and sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ledger import Settings, open_store
from projections.catalogue import PROJECTIONS
from projections.runner import BatchReport, ProjectionRunner


def run_until_killed(url: str, batch_size: int, stop_at: int, marker: Path) -> None:
    batches = 0

    def before_commit(report: BatchReport) -> None:
        nonlocal batches
        batches += 1
        if batches == stop_at:
            partial = marker.with_suffix(".partial")
            partial.write_text(json.dumps(asdict(report)))
            partial.replace(marker)  # the test never reads half a file
            time.sleep(600)

    with (
        open_store(Settings(database_url=url, pool_size=1)) as store,
        ProjectionRunner(
            store, PROJECTIONS, batch_size=batch_size, before_commit=before_commit
        ) as runner,
    ):
        runner.run()


if __name__ == "__main__":
    run_until_killed(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
