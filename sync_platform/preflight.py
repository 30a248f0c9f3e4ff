"""What can be checked before anything is written: the task's settings against the source table as
it is (every column a setting names exists; hashdiff has a key) and the target as it is (its
schema exists; an existing table has the exported columns, of types that hold the source's).
`sync-platform validate --connect` reports these problems; an export refuses to start on them, so
nothing is exported that the target cannot take, and no error quotes source rows."""

from __future__ import annotations

from .engine.columns import TableName, TableSchema
from .engine.dialects import Database
from .engine.load import target_problem
from .errors import SyncPlatformError, UnknownName


class PreflightRefused(SyncPlatformError):
    """A table's settings do not fit its source or target; nothing was written. Lists each problem."""


def _order_columns(order_by: str) -> list[str]:
    return [term.split()[0].strip('"`') for term in order_by.split(",") if term.strip()]


def setting_problems(table, schema: TableSchema) -> list[str]:
    """Each column a setting of the table (a TableSync) names, checked against the source table's
    columns, and hashdiff's need for a key; one line per problem, naming the field."""
    named: list[tuple[str, str]] = []  # (field, column)
    if table.partition:
        named.append(("partition.column", table.partition.column))
    if table.filters:
        named += [(f"filters.conditions[{i}].column", c.column) for i, c in enumerate(table.filters.conditions)]
        if table.filters.time_range:
            named.append(("filters.time_range.column", table.filters.time_range.column))
    rc = table.run_config
    named += [(f"run_config.key_columns[{i}]", c) for i, c in enumerate(rc.key_columns or [])]
    named += [(f"run_config.extra_columns[{i}]", c) for i, c in enumerate(rc.extra_columns or [])]
    if rc.import_order_by:
        named += [("run_config.import_order_by", c) for c in _order_columns(rc.import_order_by)]
    problems = [f"{field}: {UnknownName('column', column, schema.names, owner=f'table {table.source.table}')}"
                for field, column in named if column not in schema.names]
    if rc.algorithm == "hashdiff" and not rc.key_columns and not schema.primary_key:
        problems.append(f"run_config.algorithm: hashdiff needs key columns, and {table.source.table} has no primary "
                        "key; set run_config.key_columns, or use md5diff")
    return problems


def target_schema_problem(target: Database, name: TableName) -> str | None:
    if name.schema is None or target.schema_exists(name.schema):
        return None
    return (f"target: schema {name.schema!r} does not exist in {target.label}; create it, or name an existing schema "
            "in the task's target")


def check_before_writing(table, source_schema: TableSchema, target: Database) -> None:
    """Raise PreflightRefused naming the task, the table and every problem, before anything is written."""
    name = table.target.table_name
    problems = setting_problems(table, source_schema)
    schema_problem = target_schema_problem(target, name)
    if schema_problem:
        problems.append(schema_problem)
    elif table_problem := target_problem(target, name, source_schema):
        problems.append(f"target: {table_problem}")
    if problems:
        raise PreflightRefused(f"{table.source.table} -> {table.target.table}: refused before writing anything: "
                               + "; ".join(problems))
