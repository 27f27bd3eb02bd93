from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from trio_companion.storage._sqlite import (
    environment_failure,
    run_transaction,
    split_statements,
)


def _memory() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER)")
    return conn


def _insert_one(conn: sqlite3.Connection) -> str:
    conn.execute("INSERT INTO t VALUES (1)")
    return "done"


def _insert_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t VALUES (1)")
    raise RuntimeError("boom")


def test_transaction_commits_and_returns_the_result() -> None:
    with closing(_memory()) as conn:
        assert run_transaction(conn, _insert_one, begin="BEGIN IMMEDIATE") == "done"
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_transaction_rolls_back_when_the_function_raises() -> None:
    with closing(_memory()) as conn:
        with pytest.raises(RuntimeError, match="boom"):
            run_transaction(conn, _insert_then_fail, begin="BEGIN IMMEDIATE")
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_statements_are_split_with_trigger_bodies_whole() -> None:
    script = """
        CREATE TABLE a (x);  -- a comment; with a semicolon
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            SELECT 1;
            SELECT 'a;b';
        END;
    """
    statements = list(split_statements(script))
    assert statements[0] == "CREATE TABLE a (x);"
    assert statements[-1].startswith("-- a comment; with a semicolon\n")
    assert statements[-1].endswith("END;")
    with closing(sqlite3.connect(":memory:")) as conn:
        for statement in statements:
            conn.execute(statement)


def test_an_unfinished_statement_is_refused() -> None:
    with pytest.raises(ValueError, match="incomplete SQL statement"):
        list(split_statements("CREATE TABLE a (x); CREATE TABLE b (y)"))


def test_environment_failures_are_told_apart_from_bugs() -> None:
    with (
        closing(sqlite3.connect(":memory:")) as conn,
        pytest.raises(sqlite3.OperationalError) as syntax,
    ):
        conn.execute("SELEC 1")
    assert environment_failure(syntax.value) is None
    assert environment_failure(sqlite3.ProgrammingError("no error code")) is None
