"""Append-only is enforced by the database, not by politeness."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import errors, sql

from console.cli import cli
from ledger import Settings, open_store
from ledger.errors import ConfigurationError
from ledger.recorders import ChainedApplicationRecorder
from ledger.store import ChainStore
from ledger.verify import verify_ledger
from tests.conftest import make_events
from tests.support.databases import admin_dsn, dsn_for, postgres_database


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_writer_role_appends_but_cannot_change_or_remove(url: str) -> None:
    # The service connects as regledger_writer: INSERT and SELECT only.
    writer_url = dsn_for(_database_name(url), user="regledger_writer")
    with open_store(Settings(database_url=writer_url)) as store:
        recorder = ChainedApplicationRecorder(store)
        assert recorder.insert_events(make_events(10)) == list(range(1, 11))
        assert store.max_position() == 9

    with psycopg.connect(writer_url, autocommit=True) as writer:
        for statement in (
            "UPDATE ledger_events SET state = 'x'::bytea WHERE position = 3",
            "DELETE FROM ledger_events WHERE position = 3",
            "TRUNCATE ledger_events",
            "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_update",
            "DROP TRIGGER ledger_events_no_delete ON ledger_events",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                writer.execute(statement)

    assert verify_ledger(Settings(database_url=url)).checked == 10


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_triggers_stop_even_the_owner(url: str, store: ChainStore) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(3))
    with psycopg.connect(url, autocommit=True) as owner:
        for statement, operation in (
            ("UPDATE ledger_events SET originator_version = 9 WHERE position = 1", "UPDATE"),
            ("DELETE FROM ledger_events WHERE position = 1", "DELETE"),
            ("TRUNCATE ledger_events", "TRUNCATE"),
        ):
            with pytest.raises(errors.InsufficientPrivilege) as caught:
                owner.execute(statement)
            assert str(caught.value).startswith(
                f"ledger_events is append-only: {operation} rejected"
            )
    assert store.max_position() == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_triggers_reject_update_and_delete(url: str, store: ChainStore) -> None:
    ChainedApplicationRecorder(store).insert_events(make_events(3))
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE rejected"):
            conn.execute("UPDATE ledger_events SET state = x'00' WHERE position = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE rejected"):
            conn.execute("DELETE FROM ledger_events")
    finally:
        conn.close()
    assert store.max_position() == 2
    assert verify_ledger(Settings(database_url=url)).ok


def test_a_database_that_is_not_utf8_is_refused() -> None:
    # The hash covers text as UTF-8; a LATIN1 database would store other bytes.
    name = sql.Identifier("rl_test_latin1")
    with psycopg.connect(admin_dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0"
            ).format(name)
        )
    try:
        with pytest.raises(ConfigurationError) as caught:
            open_store(Settings(database_url=dsn_for("rl_test_latin1")))
        assert str(caught.value) == (
            f"{dsn_for('rl_test_latin1')} has encoding LATIN1; the ledger hashes UTF-8 text "
            "and needs a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8')"
        )
    finally:
        with psycopg.connect(admin_dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {}").format(name))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_writer_role_can_verify(url: str, store: ChainStore) -> None:
    # Reading the migrations table needs no DDL: the service role verifies too.
    ChainedApplicationRecorder(store).insert_events(make_events(4))
    writer_url = dsn_for(_database_name(url), user="regledger_writer")
    result = CliRunner().invoke(
        cli, ["verify", "--json"], env={"REGLEDGER_DATABASE_URL": writer_url}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["checked"] == 4
    # What it may not do is said in one line, not a traceback: create the schema.
    with postgres_database() as fresh:
        fresh_as_writer = dsn_for(_database_name(fresh), user="regledger_writer")
        denied = CliRunner().invoke(
            cli, ["db", "migrate"], env={"REGLEDGER_DATABASE_URL": fresh_as_writer}
        )
    assert denied.exit_code == 2
    assert denied.output == (
        f"Error: {fresh_as_writer}: permission denied for schema public; connect as a role "
        "that holds the privilege (migrations run as the database owner)\n"
    )
