"""The store's DuckDB file: one connection, one lock, one way to run a transaction.

DuckDB lets one process at a time open a file for writing; opening a file another
process holds, or a file that is not a DuckDB database, is reported as one line naming
the file and what to do. Every write of the store runs inside
:meth:`StoreDatabase.transaction`, so it is committed whole or not at all.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from features.errors import FeatureInputError, FeatureStoreError

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (for names the store controls)."""
    return '"' + identifier.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_error(path: Path, exc: duckdb.Error) -> Exception:
    """One line for a store file DuckDB cannot open."""
    message = _first_line(exc)
    held = _LOCK_HOLDER.search(message)
    if "Could not set lock" in message:
        holder = f"{held.group(1)}, PID {held.group(2)}" if held else "another process"
        return FeatureStoreError(
            f"{path}: the feature store is open for writing in another process ({holder}); "
            "one process may write a store at a time: wait for it to finish, "
            "or pass another --store"
        )
    if "not a valid DuckDB database file" in message:
        return FeatureInputError(
            path,
            "--store",
            "exists but is not a DuckDB database file",
            "a feature store made by opsbench (features build, replay --store) or a new path",
        )
    return FeatureStoreError(f"{path}: cannot open the feature store: {message}")


class StoreDatabase:
    """An open store file (``path``, ``threads`` and ``row_group_size`` as in
    :class:`features.store.FeatureStore`).

    Raises
    ------
    FeatureInputError
        Bad ``threads`` or ``row_group_size``; the file is not a DuckDB database.
    FeatureStoreError
        Another process has the file open for writing, or DuckDB cannot open it.
    """

    def __init__(self, path: Path, *, threads: int | None, row_group_size: int | None) -> None:
        self.path = path
        #: Held by every public operation of the store (re-entrant).
        self.lock = threading.RLock()
        if row_group_size is not None and (
            isinstance(row_group_size, bool)
            or not isinstance(row_group_size, int)
            or row_group_size < 2048
            or row_group_size % 2048
        ):
            raise FeatureInputError(
                "FeatureStore", "row_group_size", f"{row_group_size!r}", "a multiple of 2048"
            )
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise FeatureInputError("FeatureStore", "threads", f"{threads!r}", "an integer >= 1")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FeatureInputError(
                path,
                "--store",
                f"cannot create its folder: {exc.strerror or exc}",
                "a path whose parents are folders",
            ) from None
        self._conn: duckdb.DuckDBPyConnection | None = None
        try:
            if row_group_size is None:
                self._conn = duckdb.connect(str(path))
            else:  # the store file attached, with its row group size, to an in-memory catalog
                self._conn = duckdb.connect(":memory:")
                self._conn.execute(
                    f"ATTACH $path AS store (ROW_GROUP_SIZE {int(row_group_size)})",
                    {"path": str(path)},
                )
                self._conn.execute("USE store")
        except duckdb.Error as exc:
            self.close()
            raise _open_error(path, exc) from None
        if threads is not None:
            self._conn.execute(f"SET threads = {int(threads)}")

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        """The connection (an error once the store is closed)."""
        if self._conn is None:
            raise FeatureStoreError(f"{self.path}: the store is closed")
        return self._conn

    @property
    def closed(self) -> bool:
        return self._conn is None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the lock and run the block in one transaction: committed if it returns,
        rolled back if it raises (the exception propagates)."""
        with self.lock:
            c = self.conn
            c.execute("BEGIN")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                try:  # a failed COMMIT has already ended the transaction
                    c.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise

    def first(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first row of ``sql``'s result, or None (the result is drained)."""
        rows = self.conn.execute(sql, params or {}).fetchall()
        return rows[0] if rows else None

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of each column of ``table`` in the store; [] if none."""
        rows = self.conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND table_name = $t ORDER BY ordinal_position",
            {"t": table},
        ).fetchall()
        return [(str(name), str(dtype)) for name, dtype in rows]

    def close(self) -> None:
        """Close the connection (committed data is on disk)."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
