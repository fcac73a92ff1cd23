"""`agent-tracker export --format parquet DIR`: one dataset per table, partitioned by month.

``DIR/<table>/month=YYYY-MM/<database id>.parquet`` for a whole export (a later one replaces it),
``…/<database id>-since-<time>.parquet`` for an incremental one (``--since``: rows recorded or
updated from then on, beside the earlier files; readers keep one row per stable id). Each file is
written beside its target and renamed into place: an interrupted export leaves the old files as
they were. The schema (schema.TABLES) and its version are in every file's metadata.
"""

from __future__ import annotations

import contextlib
import uuid
from operator import itemgetter
from pathlib import Path
from typing import Any

import attrs

from ..output_files import UnsafeOutput, refuse_database_files, replace_atomically
from ..store import Store, WriteView
from ..timestamps import utc_now
from . import schema
from .extra import require
from .facts import Facts, pseudonym

NO_MONTH = "unknown"  # a row whose created_at is not a timestamp (foreign data)


class ParquetExportError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@attrs.define
class ParquetSummary:
    folder: str
    person: str
    database_id: str
    counts: dict[str, int]
    files: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {"format": "parquet", "folder": self.folder, "person": self.person, "databaseId": self.database_id,
                "schemaVersion": schema.SCHEMA_VERSION, "counts": self.counts, "files": self.files}


DATABASE_ID_KEY = "databaseId"  # meta: the database's stable id (protocol/storage.md), given once, never changed


def ensure_database_id(store: Store) -> str:
    """The database's stable id, given now (put-if-absent, in one write) if it has none yet."""
    def give(view: WriteView) -> None:
        view.insert("meta", DATABASE_ID_KEY, uuid.uuid4().hex)

    store.write(give)
    found = database_id(store)
    assert found is not None
    return found


def database_id(store: Store) -> str | None:
    with store.read() as view:
        found = view.meta(DATABASE_ID_KEY)
    return found if isinstance(found, str) and found else None


def export_parquet(store: Store, folder: Path, *, person: str | None = None, since: str | None = None,
                   include_prompts: bool = False) -> ParquetSummary:
    """Write every table of ``store`` under ``folder``; ``since`` is a normalised --since prefix."""
    pq = require("pyarrow.parquet")
    db_id = database_id(store)
    if db_id is None:
        raise ParquetExportError(f"The database at {store.path} has no database id yet; run any writing command "
                                 f"(or let a bridge open it) first.")
    who = person or pseudonym(db_id)
    try:
        refuse_database_files(folder / "sessions", store.path, what="the export")
    except UnsafeOutput as exc:
        raise ParquetExportError(str(exc), 2) from None
    if folder.exists() and not folder.is_dir():
        raise ParquetExportError(f"The Parquet export goes into a folder (one dataset per table); {folder} is a file.", 2)
    exported_at = utc_now()
    suffix = f"-since-{since.replace(':', '').replace('-', '').replace('.', '')}" if since else ""
    metadata = {schema.VERSION_KEY: str(schema.SCHEMA_VERSION), schema.PERSON_KEY: who,
                schema.DATABASE_KEY: db_id, schema.EXPORTED_KEY: exported_at}
    writers = {table: _Dataset(folder / table, f"{db_id}{suffix}.parquet", table,
                               {**metadata, schema.TABLE_KEY: table}) for table in schema.TABLES}
    with contextlib.ExitStack() as files, store.read() as view:
        for dataset in writers.values():
            files.enter_context(dataset)
        facts = Facts(view, database_id=db_id, person=who, since=since, include_prompts=include_prompts)
        for table, row in facts.sessions_and_usage():
            writers[table].add(row)
        for table, rows in (("commits", facts.commits()), ("grades", facts.grades()), ("bugs", facts.bugs()),
                            ("configs", facts.configs())):
            for row in rows:
                writers[table].add(row)
    return ParquetSummary(str(folder), who, db_id, {table: dataset.rows for table, dataset in writers.items()},
                          [path for dataset in writers.values() for path in dataset.written])


class _Dataset:
    """One table's files, one per month, written in row groups whenever CHUNK rows are buffered (the
    rows of a big database never sit in memory at once); each file is renamed into place when the
    export ends without error."""

    CHUNK = 20_000

    def __init__(self, folder: Path, name: str, table: str, metadata: dict[str, str]):
        self.folder, self.name, self.table, self.metadata = folder, name, table, metadata
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.writers: dict[str, Any] = {}
        self.rows = 0
        self.buffered = 0
        self.written: list[str] = []
        self._files = contextlib.ExitStack()

    def __enter__(self) -> "_Dataset":
        return self

    def add(self, row: dict[str, Any]) -> None:
        created = row.get("created_at")
        month = created[:7] if isinstance(created, str) and len(created) >= 7 and created[4] == "-" else NO_MONTH
        self.buffers.setdefault(month, []).append(row)
        self.rows += 1
        self.buffered += 1
        if self.buffered >= self.CHUNK:  # every month's rows so far: one row group each
            for buffered_month in list(self.buffers):
                self._flush(buffered_month)
            self.buffered = 0

    def _flush(self, month: str) -> None:
        pq = require("pyarrow.parquet")
        arrow = to_arrow(self.table, self.buffers.pop(month, []), self.metadata)
        target = self.folder / f"month={month}" / self.name
        try:
            writer = self.writers.get(month)
            if writer is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = self._files.enter_context(replace_atomically(target, binary=True))
                writer = self.writers[month] = pq.ParquetWriter(handle, arrow.schema, compression="zstd")
                self._files.callback(writer.close)  # closed before its file is renamed into place
                self.written.append(str(target))
            writer.write_table(arrow)
        except OSError as exc:
            raise ParquetExportError(f"Cannot write {target}: {exc.strerror or exc}.") from None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if kind is None:
                for month in list(self.buffers):
                    self._flush(month)
        finally:
            try:
                self._files.__exit__(kind, error, trace)
            except OSError as exc:
                raise ParquetExportError(f"Cannot write into {self.folder}: {exc.strerror or exc}.") from None


def to_arrow(table: str, rows: list[dict[str, Any]], metadata: dict[str, str]) -> Any:
    """Rows of ``table`` as an Arrow table of its schema (timestamps parsed from the stored ISO text)."""
    pa = require("pyarrow")
    arrow_schema = schema.arrow_schema(table, metadata)
    arrays = []
    names = arrow_schema.names
    # Transposed in C: every row holds every column (facts.Facts builds them so).
    transposed = list(zip(*map(itemgetter(*names), rows))) if rows else [() for _ in names]
    for field, column in zip(arrow_schema, transposed):
        values = list(column)
        if pa.types.is_timestamp(field.type):
            arrays.append(timestamps(values, field.type))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def timestamps(values: list[Any], kind: Any) -> Any:
    """ISO-8601 text as Arrow timestamps; a value that is not one becomes null (foreign data)."""
    pa = require("pyarrow")
    from ..timestamps import parse_iso

    text = pa.array([value if isinstance(value, str) else None for value in values], type=pa.string())
    try:
        return text.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([parse_iso(value) for value in values], type=kind)
