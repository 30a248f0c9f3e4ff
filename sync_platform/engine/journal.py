"""The journal of a chunked export: its chunk plan and each chunk's files once they are all in the
store, so a re-run after a kill -9 or a lost host reads only the chunks that were not complete.

A resume combines chunks read in the interrupted export's snapshot with chunks read in a new
one, which is exact only if the table did not change in between. It is refused (and the whole
table exported again) unless the source query, the file format, the file size in rows and the
table's identity are the same: PostgreSQL's relfilenode (a TRUNCATE, a VACUUM FULL or a rewrite
changes it) and its statistics' counts of rows inserted, updated and deleted. PostgreSQL publishes
a session's counts when it commits, or within 10 s when it has been idle; a change in the last
seconds before the re-run may not count yet, which the data_diff check after the import reports.
The import is never resumed: it loads every file in one transaction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .manifest import ExportFile
from .stores import ObjectStore


@dataclass
class ChunkJournal:
    query: str
    file_format: str
    batch_rows: int
    identity: dict
    conditions: list[str]
    files: dict[int, list[ExportFile]] = field(default_factory=dict)  # the complete chunks only

    @staticmethod
    def key(folder: str) -> str:
        return f"_sync_platform/journal/{folder}.json"

    def save(self, store: ObjectStore, folder: str) -> None:
        state = {**asdict(self), "files": {str(c): [asdict(f) for f in fs] for c, fs in self.files.items()}}
        store.put(self.key(folder), json.dumps(state).encode())

    @classmethod
    def load(cls, store: ObjectStore, folder: str) -> ChunkJournal | None:
        found = store.get_versioned(cls.key(folder))
        if found is None:
            return None
        state = json.loads(found[0])
        files = {int(c): [ExportFile(**f) for f in fs] for c, fs in state.pop("files").items()}
        return cls(**state, files=files)

    def resumable(self, store: ObjectStore, folder: str, query: str, file_format: str, batch_rows: int,
                  identity: dict | None) -> bool:
        """Whether this journal's chunks may be kept: same export, same unchanged table, and every
        recorded file still in the store at its recorded size."""
        if identity is None or (self.query, self.file_format, self.batch_rows, self.identity) != (
                query, file_format, batch_rows, identity):
            return False
        sizes = store.sizes(folder)
        return all(sizes.get(f"{folder}/{f.name}") == f.bytes for fs in self.files.values() for f in fs)
