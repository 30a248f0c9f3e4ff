from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from ..errors import StoreError


class StoreConfigModel(BaseModel):
    """A store's entry under `s3_configs` in the configuration file: `type` names the store."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class S3Access:
    """How a reader other than our client (DuckDB's httpfs) reaches an S3 store: never logged."""

    endpoint_url: str | None  # None: AWS
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    path_style: bool


@dataclass(frozen=True)
class StoredObject:
    """An object as a database that reads the store itself sees it (DuckDB's read_parquet), pinned
    to the version whose bytes were hashed: a load checks it is still that version before it commits."""

    location: str  # what the reader opens: a local path, or s3://bucket/key
    version: str  # local: inode, size and mtime; S3: the ETag
    sha256: str  # of the bytes read at that version
    bytes: int
    s3: S3Access | None = None  # how to reach an S3 location


class ObjectStore(ABC):
    """Keys are `/`-separated paths relative to the store's root (folder or bucket + prefix).

    A store type is its subclass and its `Config` (the entry under `s3_configs`); `from_config`
    builds the store a task uses (`bucket`: the task's override, where the store has buckets)."""

    Config: ClassVar[type[StoreConfigModel]]
    has_buckets: ClassVar[bool] = False
    one_host: ClassVar[bool] = False  # only the host that holds it can read it (a local folder)

    @classmethod
    @abstractmethod
    def from_config(cls, config: StoreConfigModel, bucket: str | None = None, name: str | None = None) -> ObjectStore:
        """The store a task uses: `bucket` its override, `name` the config's id (for messages)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write `data` under `key`; readers see the whole object or none of it."""

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix` (a folder path), sorted."""

    @abstractmethod
    def sizes(self, prefix: str) -> dict[str, int]:
        """Key -> size in bytes of every object under `prefix` (a folder path)."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object and its version tag (an ETag), or None when there is no such object."""

    @abstractmethod
    def put_if(self, key: str, data: bytes, version: str | None) -> str | None:
        """Write `data` only if the object is still at `version` (None: only if there is no
        object): the new version, or None when someone else wrote first. The one primitive leases
        need (S3's conditional PUT: If-Match / If-None-Match)."""

    @abstractmethod
    def stored_object(self, key: str) -> StoredObject:
        """The object's location for another reader, its version, and the sha256 and size of the
        bytes at that version (read once, never held whole in memory)."""

    @abstractmethod
    def version(self, key: str) -> str | None:
        """The object's current version (as stored_object gives it), None when it is gone."""

    @abstractmethod
    def check(self) -> None:
        """Raise StoreError naming the cause if the store cannot be reached or written."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where `key` lives, for people to read (file:// or s3://); never holds credentials."""

    def round_trip(self) -> None:
        """The spec's connection test: write, read back and delete a small object; StoreError
        names the first step that failed and why."""
        key = f"_sync_platform_connection_test/{os.urandom(8).hex()}"
        payload = os.urandom(64)
        self.put(key, payload)
        try:
            if self.get(key) != payload:
                raise StoreError(f"{self.url(key)} read back different bytes than were written")
        finally:
            self.delete([key])
        if self.exists(key):
            raise StoreError(f"{self.url(key)} is still there after its deletion")

    def delete_folder(self, folder: str) -> int:
        """Delete every object under `folder`; how many there were."""
        keys = self.list(folder)
        self.delete(keys)
        return len(keys)
