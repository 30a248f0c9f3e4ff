"""The journal of an interrupted export, so that a re-run after a kill -9 or a lost host reads
only what the killed export had not written yet:
- a chunked export (PostgreSQL): its chunk plan and each chunk's files once they are all in the
  store; a re-run reads only the chunks that were not complete;
- a one-query export read in primary-key order (MySQL/MariaDB InnoDB, SQLite: Database.ordered_key):
  every few files, the files so far and the key of their last row; a re-run reads the rows after it.

A resume combines rows read in the interrupted export's snapshot with rows read in a new one,
which is exact only if the table did not change in between. It is refused (and the whole table
exported again) unless the source query, the file format, the file size in rows and the table's
identity (Database.table_identity) are the same, and every file kept is still in the store at its
size:
- PostgreSQL: the table's relfilenode (a TRUNCATE, a VACUUM FULL or a rewrite changes it) and its
  statistics' counts of rows inserted, updated and deleted. PostgreSQL publishes a session's
  counts when it commits, or within 10 s when it has been idle; a change in the last seconds
  before the re-run may not count yet, which the data_diff check after the import reports.
- MySQL/MariaDB: InnoDB's create_time and update_time (the second of the last commit that changed
  the table, kept in memory: none after a server restart, so no resume then).
- SQLite: the database file's and its write-ahead log's sizes, times and change counters.
A resumed read checks the identity again once its query has begun (its snapshot taken): a table
written in between is exported again whole. The import is never resumed: it loads every file in
one transaction."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from .manifest import ExportFile
from .stores import ObjectStore


@dataclass
class ExportJournal:
    query: str
    file_format: str
    batch_rows: int
    identity: dict
    conditions: list[str]
    files: dict[int, list[ExportFile]] = field(default_factory=dict)  # complete chunks (one query: 0, up to after)
    after: str | None = None  # a one-query export: the key of files[0]'s last row (Arrow IPC, base64)

    @staticmethod
    def key(folder: str) -> str:
        return f"_sync_platform/journal/{folder}.json"

    def save(self, store: ObjectStore, folder: str) -> None:
        state = {**asdict(self), "files": {str(c): [asdict(f) for f in fs] for c, fs in self.files.items()}}
        store.put(self.key(folder), json.dumps(state).encode())

    @classmethod
    def load(cls, store: ObjectStore, folder: str) -> ExportJournal | None:
        found = store.get_versioned(cls.key(folder))
        if found is None:
            return None
        state = json.loads(found[0])
        files = {int(c): [ExportFile(**f) for f in fs] for c, fs in state.pop("files").items()}
        return cls(**state, files=files)

    def keep(self, files: list[ExportFile], last_key: pa.Table) -> None:
        """A one-query export's progress: `files`, and the key of their last row (one row)."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, last_key.schema) as writer:
            writer.write_table(last_key)
        self.files, self.after = {0: list(files)}, base64.b64encode(sink.getvalue().to_pybytes()).decode()

    def after_key(self) -> tuple:
        """The key `keep` recorded, as Python values (what the drivers bind)."""
        row = pa.ipc.open_stream(base64.b64decode(self.after)).read_all()
        return tuple(column[0].as_py() for column in row.columns)

    def resumable(self, store: ObjectStore, folder: str, query: str, file_format: str, batch_rows: int,
                  identity: dict | None) -> bool:
        """Whether this journal's files may be kept: same export, same unchanged table, and every
        recorded file still in the store at its recorded size."""
        if identity is None or (self.query, self.file_format, self.batch_rows, self.identity) != (
                query, file_format, batch_rows, identity):
            return False
        sizes = store.sizes(folder)
        return all(sizes.get(f"{folder}/{f.name}") == f.bytes for fs in self.files.values() for f in fs)
