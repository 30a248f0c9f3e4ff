"""Databases, keyed by the scheme of a datasource's SQLAlchemy URL. Each is a `Database` (connection,
reflection, bulk I/O) speaking a `SqlDialect` (the SQL idioms): see base.py and docs/new-dialect.md."""

from __future__ import annotations

from ...registry import Registry
from .base import Database, LoadFile, SqlDialect
from .duckdb import DuckDBDatabase
from .mysql import MySQLDatabase
from .postgres import PostgresDatabase
from .sqlite import SQLiteDatabase

# scheme -> Database class; the kind is what Dagster shows on the assets (one per database, not per alias).
DATABASES: Registry[type[Database]] = Registry(
    "URL scheme", sort=True, adjective="unsupported", listing="valid schemes"
)
DATABASES.register("sqlite", SQLiteDatabase, "SQLite, a file (the embedded default)")
DATABASES.register("duckdb", DuckDBDatabase, "DuckDB, a warehouse file: read_parquet / read_csv load the files")
DATABASES.register("postgresql", PostgresDatabase, "PostgreSQL: ADBC binary COPY out, COPY FROM STDIN in")
DATABASES.register("postgres", PostgresDatabase, "PostgreSQL (alias)", kind="postgresql")
DATABASES.register("mysql", MySQLDatabase, "MySQL / MariaDB: connectorx out, LOAD DATA LOCAL INFILE in")
DATABASES.register("mariadb", MySQLDatabase, "MariaDB (alias of mysql)", kind="mysql")


def url_scheme(url: str) -> str:
    """`postgresql+psycopg://...` -> `postgresql`."""
    return url.split(":", 1)[0].split("+", 1)[0].lower()


def database_for(url: str, timezone: str = "UTC") -> Database:
    """The database at `url`, its sessions in `timezone`; UnknownName for a scheme we do not know."""
    return DATABASES.get_value(url_scheme(url))(url, timezone)


__all__ = ["DATABASES", "Database", "LoadFile", "SqlDialect", "database_for", "url_scheme"]
