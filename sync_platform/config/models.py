"""The operators' configuration as typed models: datasources, S3 configs and sync tasks.

Field names and defaults follow the product spec (run_config's 19 keys keep the spec's names).
Cross references (datasource ids, s3_config_id) are checked by `SyncConfig` so an error can name
the task, the field and the ids that exist.
"""

from __future__ import annotations

import operator
import re
from datetime import date
from functools import reduce
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..engine.columns import TableName
from ..engine.dialects import DATABASES, url_scheme
from ..engine.diff import ALGORITHMS
from ..engine.diff.values import DEFAULT_BISECTION_FACTOR, DEFAULT_BISECTION_THRESHOLD
from ..engine.filters import Condition
from ..engine.formats import CSV_COMPRESSIONS, FORMATS
from ..engine.stores import STORES
from ..engine.stores.s3 import BucketName
from ..errors import UnknownName
from . import cron as crontab
from .where import validate_custom_where

TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"



MAX_EXPORT_BATCH_ROWS = 5_000_000


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Datasource(Model):
    """A database, by SQLAlchemy URL: sqlite:///path.db or postgresql://user:${PASSWORD}@host/db."""

    url: SecretStr

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: SecretStr) -> SecretStr:
        DATABASES[url_scheme(url.get_secret_value())]  # UnknownName lists the schemes
        _refuse_unparsable(url.get_secret_value())
        return url

    @property
    def scheme(self) -> str:
        """The URL's scheme (`postgresql`, `sqlite`...): not a secret."""
        return url_scheme(self.url.get_secret_value())


def _refuse_unparsable(url: str) -> None:
    """A user or password holding a raw '@', ':' or '%' makes the URL mean something else (or
    nothing) to the drivers. Say so without repeating any of it: it may be a secret."""
    from sqlalchemy.engine import make_url

    authority = url.partition("://")[2].partition("/")[0]
    userinfo = authority.rpartition("@")[0]
    bad_percent = re.search(r"%(?![0-9A-Fa-f]{2})", userinfo)
    if authority.count("@") > 1 or bad_percent or userinfo.count(":") > 1:
        raise ValueError(
            "the user or password holds a raw '@', ':' or '%', so drivers cannot read the URL; percent-encode "
            "them in the URL or the variable it reads (@ as %40, : as %3A, % as %25; the URL is not shown here)"
        )
    try:
        make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's message quotes the URL
        raise ValueError(
            "not a valid database URL (scheme://user:password@host:port/database; not shown here)"
        ) from None


# One member per registered store type, told apart by `type` (engine/stores: each store's Config).
_STORE_CONFIGS = reduce(operator.or_, (entry.value.Config for entry in STORES.values()))
StoreConfig = Annotated[_STORE_CONFIGS, Field(discriminator="type")]


class RunConfig(Model):
    """The spec's 19 run configuration keys, with the spec's defaults, and export_readers."""

    key_columns: list[str] | None = None
    extra_columns: list[str] | None = None
    algorithm: Literal[ALGORITHMS.names] = "md5diff"
    limit: int = Field(1000, ge=1, le=1000)
    threads: int = Field(1, ge=1)
    bisection_threshold: int | None = Field(None, ge=2)
    bisection_factor: int | None = Field(None, ge=2)
    verbose: bool = False
    s3_config_id: str | None = None
    s3_config_bucket: BucketName | None = None
    mppsql_server_name: str | None = None
    # A file is built in memory before it is written: bounded, as Sling and dlt bound theirs.
    export_batch_rows: int = Field(100_000, ge=1, le=MAX_EXPORT_BATCH_ROWS)
    batch_parallel_size: int = Field(5, ge=1)
    batch_file_format: Literal[FORMATS.names] = "csv"
    heartbeat_timeout: int = Field(60, ge=1)
    export_compress_parallel: int = Field(5, ge=1)
    enable_pk_duplicate_detect: bool = True
    source_timezone: str = "Asia/Shanghai"
    import_order_by: str | None = None
    # Not one of the spec's keys: chunks of one table read at once, from one shared snapshot
    # (PostgreSQL sources; others read with one reader). README "How a sync works".
    export_readers: int = Field(1, ge=1, le=16)

    @field_validator("key_columns", "extra_columns", mode="before")
    @classmethod
    def _comma_list(cls, value):
        if isinstance(value, str):  # the spec's UI takes "a, b"
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("source_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError or OSError, by how the name is wrong
            close = sorted(z for z in available_timezones() if value.lower().split("/")[-1] in z.lower())[:5]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai or UTC{hint}"
            ) from None
        return value

    @field_validator("import_order_by")
    @classmethod
    def _order_by_shape(cls, value: str | None) -> str | None:
        if value is not None and (";" in value or not value.strip()):
            raise ValueError("import_order_by is an ORDER BY list such as 'l_shipdate, l_orderkey desc'")
        return value

    @model_validator(mode="after")
    def _factor_below_threshold(self) -> RunConfig:
        factor = self.bisection_factor or DEFAULT_BISECTION_FACTOR
        threshold = self.bisection_threshold or DEFAULT_BISECTION_THRESHOLD
        if factor >= threshold:
            raise ValueError(
                f"bisection_factor ({factor}) must be less than bisection_threshold ({threshold})"
            )
        return self


class TableRef(Model):
    datasource: str
    table: str

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        TableName.parse(value)
        return value

    @property
    def table_name(self) -> TableName:
        return TableName.parse(self.table)


class StoreRef(Model):
    """Where a task's export files go: an S3 config id (or local store id) and a bucket override."""

    s3_config_id: str | None = None
    s3_config_bucket: BucketName | None = None
    csv_compression: Literal[CSV_COMPRESSIONS] = "zstd"


class ConditionConfig(Model):
    column: str
    op: str
    value: Any = None

    @model_validator(mode="after")
    def _valid(self) -> ConditionConfig:
        Condition(self.column, self.op, self.value)  # FilterError names the operator and valid values
        return self


class TimeRangeConfig(Model):
    """The last N months/years before the run's anchor time (see filters.resolve_time_range)."""

    column: str
    last: int = Field(ge=1)
    unit: Literal["month", "year"]


class FilterConfig(Model):
    """The spec's filter rules: conditions joined by AND (match: all) or OR (match: any), a time
    range, and a custom WHERE for each side (one boolean expression, no trailing `;`)."""

    match: Literal["all", "any"] = "all"
    conditions: list[ConditionConfig] = []
    time_range: TimeRangeConfig | None = None
    source_where: str | None = None
    target_where: str | None = None

    @field_validator("source_where", "target_where")
    @classmethod
    def _one_boolean_expression(cls, value: str | None) -> str | None:
        return None if value is None else validate_custom_where(value)


class PartitionConfig(Model):
    """Time-window partitions on `column`, one per day or month from `start` (to `end`, else up to
    the last complete period), in the task's source_timezone.

    `backfill`: per_partition launches one run per partition; single_run launches one run over the
    whole range (fast history loads) that still exports, imports and checks partition by partition."""

    column: str
    granularity: Literal["day", "month"]
    start: date
    end: date | None = None
    backfill: Literal["per_partition", "single_run"] = "per_partition"

    @model_validator(mode="after")
    def _start_before_end(self) -> PartitionConfig:
        if self.granularity == "month" and self.start.day != 1:
            raise ValueError(f"a monthly partition starts on the first day of a month (got {self.start})")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"partition end {self.end} must be after its start {self.start}")
        return self


class CronSchedule(Model):
    """A periodic task: a 5-field cron (minute hour day-of-month month day-of-week) in `timezone`
    (default: the task's run_config.source_timezone)."""

    cron: str
    timezone: str | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            crontab.parse(value)
        except ValueError as error:
            raise ValueError(
                f"invalid cron {value!r}: give 5 fields, minute hour day-of-month month day-of-week, as numbers "
                "(0 = Sunday), e.g. '*/60 20 1-30 1-12 6' (minute 0 of 20:00, days 1-30, every month, on Saturdays); "
                f"here {error}"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return None if value is None else RunConfig._known_timezone(value)

    def fires_on(self, day: date) -> bool:
        """The spec reads a cron that restricts both the day of month and the weekday as BOTH
        ("days 1-30, every Saturday"), where classic cron (and Dagster) fire when EITHER matches:
        ticks on the other days are skipped."""
        _, _, month_days, _, weekdays = self.cron.split()
        if "*" in (month_days, weekdays):
            return True
        _, _, days, _, week = crontab.parse(self.cron)
        return day.day in days and day.isoweekday() % 7 in {d % 7 for d in week}

    @property
    def dagster_cron(self) -> str:
        """The cron as Dagster should read it: a step as wide as its field (`*/60` minutes) means
        the field's first value in cron, but Dagster would fire such a schedule more often."""
        fields = []
        for field_text, (_, low, high) in zip(self.cron.split(), crontab.FIELDS):
            step = re.fullmatch(r"\*/(\d+)", field_text)
            fields.append(str(low) if step and int(step.group(1)) > high - low else field_text)
        return " ".join(fields)


class CleanupConfig(Model):
    """The optional archival flow: once a table (partition) is verified, delete it from the source."""

    source_after_verify: bool = False
    batch_size: int = Field(10_000, ge=1)  # rows per round (per transaction)


class TaskBase(Model):
    """What every task has: a name, where its files go, its filter rules, schedule and run_config."""

    name: str
    description: str = ""
    store: StoreRef = StoreRef()
    filters: FilterConfig | None = None
    # None: on demand only; "immediate": run once when declared or changed; or a cron schedule.
    schedule: Literal["immediate"] | CronSchedule | None = None
    run_config: RunConfig = RunConfig()
    cleanup: CleanupConfig | None = None

    @model_validator(mode="after")
    def _archival_deletes_a_slice(self):
        if self.cleanup and self.cleanup.source_after_verify and not (self.filters or getattr(self, "partition", None)):
            raise ValueError(
                "cleanup.source_after_verify would delete the whole source table after each verified sync; "
                "give the task a partition or filters (what is copied is what gets deleted)"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_pattern(cls, value: str) -> str:
        if not TASK_NAME.match(value):
            raise ValueError(
                f"task name {value!r} must start with a letter and hold only letters, digits and '_' "
                "(it becomes a Dagster job and asset key)"
            )
        return value

    @property
    def config_hash(self) -> str:
        """Identifies this task's configuration: an immediate task runs once per value."""
        import hashlib

        return hashlib.sha256(self.model_dump_json(exclude={"description"}).encode()).hexdigest()[:16]

    @property
    def s3_config_id(self) -> str | None:
        return self.store.s3_config_id or self.run_config.s3_config_id

    @property
    def s3_config_bucket(self) -> str | None:
        return self.store.s3_config_bucket or self.run_config.s3_config_bucket


class TableToTableTask(TaskBase):
    type: Literal["table_to_table"]
    source: TableRef
    target: TableRef
    partition: PartitionConfig | None = None
    # Where the job's steps run: in the run worker's process (no start-up per step, nothing outlives
    # a killed worker), or one process per step (Dagster's default; a step's memory is its own).
    executor: Literal["in_process", "multiprocess"] = "in_process"
    # One step instead of two assets run one after the other: the import overlaps the export
    # (engine/pipeline.py; README "How a sync works"), the export can no longer be run alone.
    pipeline: bool = False


class DatabaseRef(Model):
    """A datasource and a schema in it (default: the connection's default schema; SQLite: main)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    datasource: str
    schema_name: str | None = Field(None, alias="schema")

    @field_validator("schema_name")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None:
            TableName(name="t", schema=value)  # same identifier rule as table names
        return value

    def table(self, name: str) -> TableRef:
        return TableRef(datasource=self.datasource, table=f"{self.schema_name}.{name}" if self.schema_name else name)


def _bare_table_name(value: str) -> str:
    if "." in value:
        raise ValueError(
            f"give the table name without a schema ({value!r}); the schema is the task's source/target schema"
        )
    TableName(name=value)
    return value


class TableMapping(Model):
    """One table of a database_to_database task: its target name, and run_config keys and filters
    that override the task's for this table only."""

    source: str
    target: str | None = None  # default: the source name
    run_config: RunConfig | None = None  # only the keys given here override the task's
    filters: FilterConfig | None = None  # replaces the task's filters for this table

    @field_validator("source", "target")
    @classmethod
    def _bare_name(cls, value: str | None) -> str | None:
        return None if value is None else _bare_table_name(value)

    @property
    def target_name(self) -> str:
        return self.target or self.source


class DatabaseToDatabaseTask(TaskBase):
    """The spec's database-to-database task: every table of the source schema (whole_database, same
    names in the target; `tables` may still override run_config/filters per table, `exclude` skips
    some) or a list of tables with target names (tables). Each table is a subtask; at most
    run_config.batch_parallel_size of them run at once."""

    type: Literal["database_to_database"]
    source: DatabaseRef
    target: DatabaseRef
    copy_mode: Literal["whole_database", "tables"]
    tables: list[TableMapping] = []
    exclude: list[str] = []
    # Age after which the cached table list of a whole_database task is reported stale.
    table_list_max_age_days: int = Field(7, ge=1)

    @model_validator(mode="after")
    def _consistent_tables(self) -> DatabaseToDatabaseTask:
        if self.copy_mode == "tables" and not self.tables:
            raise ValueError("copy_mode 'tables' needs a non-empty tables list of {source, target}")
        if self.copy_mode == "tables" and self.exclude:
            raise ValueError("exclude applies to copy_mode 'whole_database' only; list the tables you want instead")
        if self.copy_mode == "whole_database":
            renamed = [t.source for t in self.tables if t.target_name != t.source]
            if renamed:
                raise ValueError(
                    f"copy_mode 'whole_database' keeps table names; remove target from tables {renamed} "
                    "or use copy_mode 'tables'"
                )
            if self.source.datasource == self.target.datasource and self.source.schema_name == self.target.schema_name:
                raise ValueError(
                    "source and target are the same datasource and schema: whole_database would copy every table onto "
                    "itself"
                )
        for side in ("source", "target_name"):
            names = [getattr(t, side).lower() for t in self.tables]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(
                    f"tables: {side.removesuffix('_name')} names {duplicates} appear more than once "
                    "(case-insensitively)"
                )
        for index, table in enumerate(self.tables):
            try:
                self.run_config_for(table)
            except ValidationError as error:  # the merged keys disagree (e.g. bisection factor/threshold)
                reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
                raise ValueError(f"tables[{index}] ({table.source}): run_config: {reasons}") from None
        return self

    def run_config_for(self, table: TableMapping | None) -> RunConfig:
        """The task's run_config with the table's own keys laid over it."""
        if table is None or table.run_config is None:
            return self.run_config
        merged = {**self.run_config.model_dump(exclude_unset=True), **table.run_config.model_dump(exclude_unset=True)}
        return RunConfig.model_validate(merged)

    def mapping(self, source_table: str) -> TableMapping | None:
        return next((t for t in self.tables if t.source == source_table), None)


Task = Annotated[TableToTableTask | DatabaseToDatabaseTask, Field(discriminator="type")]


class SyncConfig(Model):
    datasources: dict[Annotated[str, Field(pattern=ID_PATTERN)], Datasource] = {}
    s3_configs: dict[Annotated[str, Field(pattern=ID_PATTERN)], StoreConfig] = {}
    tasks: list[Task] = []

    def task(self, name: str) -> TableToTableTask | DatabaseToDatabaseTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise UnknownName("task", name, [t.name for t in self.tasks])
