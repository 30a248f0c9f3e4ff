"""Registries: one per kind of plug-in (file formats, stores, diff algorithms, dialects), each
mapping a name to its implementation, a description and a short kind tag. Configuration
validation, CLI choices, asset descriptions and kinds read them, so adding a plug-in is its own
module plus one `register` line; an unknown name is refused listing the valid ones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import UnknownName

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    description: str
    kind: str  # the tag Dagster shows (asset kinds): "csv", "s3", "postgresql"...


class Registry(Mapping[str, Entry[T]]):
    """Names listed (in messages and choices) in registration order, or sorted."""

    def __init__(self, kind: str, *, sort: bool = False, **message):
        self.kind = kind  # what a name names, for messages: "file format", "store type"...
        self._sort = sort
        self._message = message  # UnknownName's wording overrides (adjective, listing)
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, value: T, description: str, kind: str | None = None) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, value, description, kind or name)
        return value

    def __getitem__(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names, **self._message) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default=None):
        return self._entries.get(name, default)

    def get_value(self, name: str) -> T:
        return self[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries) if self._sort else self._entries)
