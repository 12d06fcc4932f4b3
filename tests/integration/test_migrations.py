"""Migrations: forward-only, recorded with their sha256, changes to applied files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import MigrationError, Settings, open_store
from ledger.store import ChainStore, Migration, migration_files


def test_migrations_are_recorded_with_their_sha256(store: ChainStore, backend: str) -> None:
    applied = store.applied_migrations()
    files = migration_files(backend)
    assert [(m.version, m.name, m.sha256) for m in applied] == [
        (f.version, f.name, f.sha256) for f in files
    ]
    assert store.pending_migrations() == []
    assert store.migrate() == []  # a second run applies nothing


def test_changed_migration_is_refused(
    store: ChainStore, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = migration_files(backend)
    edited = [Migration(files[0].version, files[0].name, files[0].sql + "\n-- edited\n")]
    monkeypatch.setattr("ledger.store.migration_files", lambda _backend: edited + files[1:])
    with pytest.raises(MigrationError) as caught:
        store.pending_migrations()
    assert str(caught.value).startswith(
        f"migration {files[0].name} was changed after it was applied"
    )


def test_fresh_database_lists_everything_pending(tmp_path: Path) -> None:
    with open_store(Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}")) as store:
        assert [m.name for m in store.pending_migrations()] == [
            "0001_ledger_events.sql",
            "0002_append_only.sql",
            "0003_tracking.sql",
            "0004_tree_tiles.sql",
            "0005_checkpoints.sql",
            "0006_projections.sql",
            "0007_streams.sql",
            "0008_indicators.sql",
        ]


def test_postgres_migration_files() -> None:
    assert [m.name for m in migration_files("postgres")] == [
        "0001_ledger_events.sql",
        "0002_append_only.sql",
        "0003_tracking.sql",
        "0004_writer_role.sql",
        "0005_tree_tiles.sql",
        "0006_checkpoints.sql",
        "0007_projections.sql",
        "0008_streams.sql",
        "0009_indicators.sql",
    ]


def test_migration_files_are_numbered_without_gaps() -> None:
    for backend in ("postgres", "sqlite"):
        versions = [m.version for m in migration_files(backend)]
        assert versions == list(range(1, len(versions) + 1))
