"""eventsourcing's own recorder contract suites, run unchanged on both chained stores.

The library's suites use placeholder topics ("topic1"), so these recorders are
built with the topic check off; everything else is the production path.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)

from ledger import Settings, open_store
from ledger.recorders import (
    ChainedApplicationRecorder,
    ChainedProcessRecorder,
    ChainedTrackingRecorder,
)
from ledger.store import ChainStore
from tests.support.databases import ledger_url


class _FreshStore:
    backend = "sqlite"

    def setUp(self) -> None:
        self._stack = ExitStack()
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        url = self._stack.enter_context(ledger_url(self.backend, folder))
        self.store: ChainStore = self._stack.enter_context(open_store(Settings(database_url=url)))

    def tearDown(self) -> None:
        self._stack.close()


class _ApplicationContract(_FreshStore, ApplicationRecorderTestCase[ChainedApplicationRecorder]):
    def create_recorder(self) -> ChainedApplicationRecorder:
        return ChainedApplicationRecorder(self.store, check_topics=False)

    def test_concurrent_throughput(self) -> None:
        # A throughput printout, not a check; bench/ingest.py measures throughput.
        pass


class _TrackingContract(_FreshStore, TrackingRecorderTestCase):
    def create_recorder(self) -> ChainedTrackingRecorder:
        return ChainedTrackingRecorder(self.store, check_topics=False)


class _ProcessContract(_FreshStore, ProcessRecorderTestCase):
    def create_recorder(self) -> ChainedProcessRecorder:
        return ChainedProcessRecorder(self.store, check_topics=False)


class TestSQLiteApplicationRecorder(_ApplicationContract):
    backend = "sqlite"


class TestPostgresApplicationRecorder(_ApplicationContract):
    backend = "postgres"


class TestSQLiteTrackingRecorder(_TrackingContract):
    backend = "sqlite"


class TestPostgresTrackingRecorder(_TrackingContract):
    backend = "postgres"


class TestSQLiteProcessRecorder(_ProcessContract):
    backend = "sqlite"


class TestPostgresProcessRecorder(_ProcessContract):
    backend = "postgres"


del _ApplicationContract, _TrackingContract, _ProcessContract
