from __future__ import annotations

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
