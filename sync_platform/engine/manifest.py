"""The manifest of an export: written last, so an export without one is incomplete."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .columns import TableSchema
from .errors import ExportIncomplete
from .stores import ObjectStore

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ExportFile:
    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    task: str
    source_table: str
    source_query: str
    file_format: str
    schema: TableSchema
    files: tuple[ExportFile, ...]
    created_at: str
    order_by: str | None = None
    extra: dict = field(default_factory=dict)
    writer: str = ""  # who wrote the export (a run, a process): an import can insist on its own run's

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": MANIFEST_VERSION,
                "task": self.task,
                "source_table": self.source_table,
                "source_query": self.source_query,
                "file_format": self.file_format,
                "order_by": self.order_by,
                "created_at": self.created_at,
                "writer": self.writer,
                "rows": self.rows,
                "bytes": self.bytes,
                "columns": self.schema.to_dict()["columns"],
                "primary_key": list(self.schema.primary_key),
                "files": [f.__dict__ for f in self.files],
                **({"extra": self.extra} if self.extra else {}),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("version") != MANIFEST_VERSION:
            raise ExportIncomplete(f"manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
        return cls(
            task=data["task"],
            source_table=data["source_table"],
            source_query=data["source_query"],
            file_format=data["file_format"],
            schema=TableSchema.from_dict(data),
            files=tuple(ExportFile(**f) for f in data["files"]),
            created_at=data["created_at"],
            order_by=data.get("order_by"),
            extra=data.get("extra", {}),
            writer=data.get("writer", ""),
        )


@dataclass(frozen=True)
class ExportState:
    """What an export folder holds, in the spec's words: `present` (a manifest and every file it
    lists, each of the size it records), `incomplete` (files without their manifest, or a manifest
    whose files are missing or of another size) or `not-exist` (nothing). Sizes, not checksums: a
    look costs one listing; the import checks each file's sha256 before loading it."""

    status: str
    files: int = 0
    bytes: int = 0
    problem: str = ""


def export_state(store: ObjectStore, folder: str) -> ExportState:
    found = store.sizes(folder)
    if not found:
        return ExportState("not-exist")
    key = manifest_key(folder)
    if key not in found:
        return ExportState("incomplete", len(found), sum(found.values()), "no manifest: the export did not complete")
    manifest = Manifest.from_json(store.get(key).decode())
    wrong = [f.name for f in manifest.files if found.get(f"{folder}/{f.name}") != f.bytes]
    if wrong:
        return ExportState("incomplete", len(manifest.files), manifest.bytes,
                           f"{len(wrong)} file(s) missing or of another size than the manifest says, e.g. {wrong[0]}")
    return ExportState("present", len(manifest.files), manifest.bytes)


def manifest_key(folder: str) -> str:
    return f"{folder}/{MANIFEST_NAME}"


def read_manifest(store: ObjectStore, folder: str) -> Manifest:
    key = manifest_key(folder)
    if not store.exists(key):
        raise ExportIncomplete(
            f"no manifest at {store.url(key)}: the export has not completed (run the export asset first)"
        )
    return Manifest.from_json(store.get(key).decode())
