"""Database dialects, keyed by the scheme of a datasource's SQLAlchemy URL."""

from __future__ import annotations

from .base import Dialect, LoadFile
from .mysql import MySQLDialect
from .postgres import PostgresDialect
from .sqlite import SQLiteDialect

DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgresDialect,
    "postgres": PostgresDialect,
    "mysql": MySQLDialect,
    "mariadb": MySQLDialect,
}


def url_scheme(url: str) -> str:
    """`postgresql+psycopg://...` -> `postgresql`."""
    return url.split(":", 1)[0].split("+", 1)[0].lower()


def dialect_for(url: str, timezone: str = "UTC") -> Dialect:
    scheme = url_scheme(url)
    if scheme not in DIALECTS:
        raise ValueError(f"no dialect for URL scheme {scheme!r}; valid schemes: {', '.join(sorted(DIALECTS))}")
    return DIALECTS[scheme](url, timezone)


__all__ = ["DIALECTS", "Dialect", "LoadFile", "dialect_for", "url_scheme"]
