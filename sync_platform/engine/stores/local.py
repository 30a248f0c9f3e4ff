from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from .base import ObjectStore, StoreConfigModel, StoredObject, StoreError

_HASH_CHUNK = 1 << 20


class LocalStoreConfig(StoreConfigModel):
    """A local folder holding export files (the embedded default)."""

    type: Literal["local"]
    path: str


class LocalStore(ObjectStore):
    """A folder on the local file system."""

    Config = LocalStoreConfig
    one_host = True

    @classmethod
    def from_config(cls, config: LocalStoreConfig, bucket: str | None = None, name: str | None = None) -> LocalStore:
        return cls(config.path)

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents and path != self.root:
            raise StoreError(f"key {key!r} escapes the store folder {self.root}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside then rename: a reader never sees a half-written file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.url(key)} does not exist") from None

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def put_if(self, key: str, data: bytes, version: str | None) -> str | None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The check and the write under one lock: writers of one host (all a local folder has).
        with open(path.parent / f".{path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.get_versioned(key)
            if (current[1] if current else None) != version:
                return None
            self.put(key, data)
            return hashlib.sha256(data).hexdigest()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @staticmethod
    def _stat_version(stat: os.stat_result) -> str:
        return f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"  # put() replaces a file: a new inode

    def stored_object(self, key: str) -> StoredObject:
        path = self._path(key)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                before = os.fstat(f.fileno())
                while chunk := f.read(_HASH_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            raise StoreError(f"{self.url(key)} does not exist") from None
        # The handle read the inode it opened: its version is the one hashed, even if replaced since.
        return StoredObject(location=str(path), version=self._stat_version(before), sha256=digest.hexdigest(),
                            bytes=before.st_size)

    def version(self, key: str) -> str | None:
        try:
            return self._stat_version(self._path(key).stat())
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def sizes(self, prefix: str) -> dict[str, int]:
        return {key: self._path(key).stat().st_size for key in self.list(prefix)}

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            for folder in path.parents:  # leave no empty folders behind, up to the root
                if folder == self.root:
                    break
                try:
                    folder.rmdir()
                except OSError:  # not empty (or already gone): its parents are not empty either
                    break

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the export folder {self.root}: {error.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"the export folder {self.root} is not writable")

    def url(self, key: str) -> str:
        return (self.root / key).as_uri()
