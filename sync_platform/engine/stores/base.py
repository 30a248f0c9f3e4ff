from __future__ import annotations

import os
from abc import ABC, abstractmethod


class StoreError(Exception):
    """An object store could not be used; the message says why, never with credentials."""


class ObjectStore(ABC):
    """Keys are `/`-separated paths relative to the store's root (folder or bucket + prefix)."""

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
    def delete(self, keys: list[str]) -> None: ...

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
