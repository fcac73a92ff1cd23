"""DuckDB behind one function: every SQL statement of the team commands runs through ``query``.

A connection is in-memory and private to one command. Remote paths (``s3://``, ``https://``) load
DuckDB's httpfs extension, which takes S3 credentials from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION) through a credential-chain secret.
"""

from __future__ import annotations

from typing import Any, Sequence

from .extra import require


class TeamDataError(Exception):
    """The datasets cannot be read as this version's team export: one sentence saying why."""


def connect(*, remote: bool = False) -> Any:
    duckdb = require("duckdb")
    connection = duckdb.connect(":memory:")
    query(connection, "SET parquet_metadata_cache = true")  # the checks and the read share each footer
    query(connection, "SET preserve_insertion_order = false")  # sums need no order: less memory
    if remote:
        query(connection, "INSTALL httpfs")
        query(connection, "LOAD httpfs")
        query(connection, "CREATE OR REPLACE SECRET team_s3 (TYPE s3, PROVIDER credential_chain)")
    return connection


def query(connection: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement; its rows. DuckDB's own errors become TeamDataError (its message kept)."""
    duckdb = require("duckdb")
    try:
        result = connection.execute(sql, list(params))
        return result.fetchall() if result.description is not None else []
    except duckdb.Error as exc:
        raise TeamDataError(f"DuckDB could not read the datasets: {str(exc).splitlines()[0]}") from None
