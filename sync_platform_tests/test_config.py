"""Configuration errors name the file, the task, the field and the valid values, before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from sync_platform.config import ConfigError, load_config
from sync_platform.config.models import RunConfig

from .conftest import table_task, write_config

STORES = {"exports": {"type": "local", "path": "/tmp/unused"}}
SOURCES = {"src": "sqlite:///src.db", "dst": "sqlite:///dst.db"}


def _problems(tmp_path, tasks, datasources=SOURCES, stores=STORES) -> list[str]:
    path = write_config(tmp_path / "sync.yaml", datasources, stores, tasks)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    return caught.value.problems


def test_defaults_are_the_specs():
    rc = RunConfig()
    assert (rc.algorithm, rc.limit, rc.threads, rc.verbose) == ("md5diff", 1000, 1, False)
    assert (rc.export_batch_rows, rc.batch_parallel_size, rc.batch_file_format) == (100_000, 5, "csv")
    assert (rc.heartbeat_timeout, rc.export_compress_parallel, rc.enable_pk_duplicate_detect) == (60, 5, True)
    assert rc.source_timezone == "Asia/Shanghai"
    assert len(RunConfig.model_fields) == 20  # the spec's 19 and export_readers (chunked exports)
    assert rc.export_readers == 1


@pytest.mark.parametrize(
    "run_config, field, expected",
    [
        ({"limit": 0}, "run_config.limit", "greater than or equal to 1"),
        ({"limit": 1001}, "run_config.limit", "less than or equal to 1000"),
        ({"algorithm": "sha1diff"}, "run_config.algorithm", "'md5diff', 'hashdiff' or 'countdiff'"),
        ({"batch_file_format": "json"}, "run_config.batch_file_format", "'csv' or 'parquet'"),
        ({"export_batch_rows": -5}, "run_config.export_batch_rows", "greater than or equal to 1"),
        ({"export_compress_parallel": 0}, "run_config.export_compress_parallel", "greater than or equal to 1"),
        ({"heartbeat_timeout": 0}, "run_config.heartbeat_timeout", "greater than or equal to 1"),
        ({"source_timezone": "Asia/Shanghia"}, "run_config.source_timezone", "unknown time zone 'Asia/Shanghia'"),
        (
            {"bisection_factor": 64, "bisection_threshold": 64},
            "run_config",
            "bisection_factor (64) must be less than bisection_threshold (64)",
        ),
        ({"bisection_factor": 20000}, "run_config", "must be less than bisection_threshold (16384)"),
        (
            {"limt": 5},
            "run_config.limt",
            "unknown field 'limt'; valid fields: key_columns, extra_columns, algorithm, limit",
        ),
        ({"import_order_by": "a; drop table x"}, "run_config.import_order_by", "ORDER BY list"),
    ],
)
def test_invalid_run_config_is_named(tmp_path, run_config, field, expected):
    problems = _problems(tmp_path, [table_task("orders_copy", ("src", "a"), ("dst", "b"), "exports", **run_config)])
    assert len(problems) == 1
    assert problems[0].startswith(f"task 'orders_copy' (tasks[0]): {field}: ")
    assert expected in problems[0]


def test_unknown_datasource_lists_valid_ids(tmp_path):
    problems = _problems(tmp_path, [table_task("t1", ("srcx", "a"), ("dst", "b"), "exports")])
    assert problems == ["task 't1' (tasks[0]): source.datasource: unknown datasource 'srcx'; valid values: dst, src"]


def test_unknown_store_and_duplicate_names(tmp_path):
    problems = _problems(
        tmp_path,
        [table_task("t1", ("src", "a"), ("dst", "b"), "nope"), table_task("t1", ("src", "a"), ("dst", "b"), "exports")],
    )
    assert "task 't1' (tasks[0]): store.s3_config_id: unknown S3 config 'nope'; valid values: exports" in problems
    assert "task 't1' (tasks[1]): name: duplicate task name; task names must be unique" in problems


def test_every_problem_is_reported_at_once(tmp_path):
    problems = _problems(
        tmp_path,
        [
            table_task("bad name", ("src", "a"), ("dst", "b"), "exports"),
            {**table_task("t2", ("src", "a"), ("dst", "b"), "exports"), "type": "tabel_to_table"},
        ],
        datasources={"src": "oracle://x", "dst": "sqlite:///d.db"},
    )
    joined = "\n".join(problems)
    assert (
        "datasources 'src': url: unsupported URL scheme 'oracle'; valid schemes: duckdb, mariadb, mysql, postgres, "
        "postgresql, sqlite"
        in joined
    )
    assert "task 'bad name' (tasks[0]): name: task name 'bad name' must start with a letter" in joined
    assert "task 't2' (tasks[1]): type: unknown value 'tabel_to_table'; valid values: table_to_table" in joined


def test_missing_environment_variable_is_named_and_secret_values_never_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("WAREHOUSE_PASSWORD", raising=False)
    problems = _problems(
        tmp_path,
        [table_task("t1", ("src", "a"), ("dst", "b"), "exports")],
        datasources={"src": "sqlite:///s.db", "dst": "postgresql://etl:${WAREHOUSE_PASSWORD}@db/dw"},
    )
    assert problems == [
        "datasources.dst.url: environment variable WAREHOUSE_PASSWORD is not set (referenced as ${WAREHOUSE_PASSWORD})"
    ]
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "s3cr3t-value")
    config = load_config(tmp_path / "sync.yaml")
    assert "s3cr3t-value" not in repr(config) and "s3cr3t-value" not in str(config.model_dump())
    assert config.datasources["dst"].url.get_secret_value() == "postgresql://etl:s3cr3t-value@db/dw"


def test_local_store_rejects_bucket_override(tmp_path):
    task = table_task("t1", ("src", "a"), ("dst", "b"), "exports")
    task["store"]["s3_config_bucket"] = "other"
    assert _problems(tmp_path, [task]) == [
        "task 't1' (tasks[0]): store.s3_config_bucket: a local store has no buckets; remove the override"
    ]


def test_validate_command_exit_codes(tmp_path):
    good = write_config(
        tmp_path / "good.yaml", SOURCES, STORES, [table_task("t1", ("src", "a"), ("dst", "b"), "exports")]
    )
    bad = write_config(
        tmp_path / "bad.yaml", SOURCES, STORES, [table_task("t1", ("src", "a"), ("dst", "b"), "exports", limit=5000)]
    )
    ok = subprocess.run(
        [sys.executable, "-m", "sync_platform.cli", "validate", str(good)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "OK (1 tasks" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "sync_platform.cli", "validate", str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert f"1 problem(s) in {bad}" in failed.stderr
    assert (
        "task 't1' (tasks[0]): run_config.limit: Input should be less than or equal to 1000 (got 5000)" in failed.stderr
    )


def test_demo_config_is_valid():
    from sync_platform.config import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    assert [t.name for t in config.tasks] == [
        "demo_orders",
        "demo_lineitem",
        "demo_customers",
        "demo_large_orders",
        "demo_lineitem_archive",
        "demo_replica",
        "demo_analytics",
    ]
    assert yaml.safe_load(DEMO_CONFIG.read_text())["tasks"][0]["type"] == "table_to_table"


def _validate(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sync_platform.cli", "validate", str(path)], capture_output=True, text=True
    )


def test_bad_input_refused_by_validate_with_field_and_limit(tmp_path, monkeypatch):
    """Held-out bad inputs that used to pass validate: a password with a raw '@' or '%' (named
    without echoing it), a duplicate key, an unbounded file size, a comment in a custom WHERE."""
    monkeypatch.setenv("DW_PASSWORD", "p@ss%Zq9x")
    task = table_task("t1", ("src", "a"), ("dst", "b"), "exports", export_batch_rows=1_000_000_000_000)
    task["filters"] = {"source_where": "amount > 3 -- big ones"}
    path = write_config(tmp_path / "sync.yaml", {"src": "sqlite:///s.db", "dst": "postgresql://etl:${DW_PASSWORD}@db:5432/dw"},
                        STORES, [task])
    failed = _validate(path)
    assert failed.returncode == 1
    assert ("datasources 'dst': url: the user or password holds a raw '@', ':' or '%', so drivers cannot read the URL; "
            "percent-encode them") in failed.stderr
    assert "p@ss" not in failed.stderr and "Zq9x" not in failed.stderr
    assert (
        "task 't1' (tasks[0]): run_config.export_batch_rows: Input should be less than or equal to 5000000"
        in failed.stderr
    )
    assert "filters.source_where: remove the comment ('--' or '/* */')" in failed.stderr

    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text("datasources: {src: {url: 'sqlite:///s.db'}}\ntasks:\n- name: t1\n  run_config: {limit: 10}\n"
                         "  type: table_to_table\n  run_config: {limit: 20}\n")
    failed = _validate(duplicate)
    assert failed.returncode == 1 and "found the key 'run_config' twice (first at line" in failed.stderr


def test_a_bad_schedule_names_only_the_branch_written(tmp_path):
    """A cron mapping is not also reported as "Input should be 'immediate'", and a word names both forms."""
    task = table_task("t1", ("src", "a"), ("dst", "b"), "exports")
    problems = _problems(tmp_path, [{**task, "schedule": {"cron": "61 * * * *"}}])
    assert len(problems) == 1 and problems[0].startswith(
        "task 't1' (tasks[0]): schedule.cron: invalid cron '61 * * * *'"
    )
    problems = _problems(tmp_path, [{**task, "schedule": "sometimes"}])
    assert problems == [
        "task 't1' (tasks[0]): schedule: unknown value 'sometimes'; valid values: immediate, or a mapping "
        "{cron: '<minute hour day-of-month month day-of-week>', timezone: <IANA zone>}"
    ]


def test_an_invalid_bucket_name_is_refused_by_validate_naming_the_s3_config(tmp_path):
    """botocore's raw ParamValidationError used to be the first word about a bucket S3 does not allow."""
    stores = {"lake": {"type": "s3", "endpoint_url": "http://127.0.0.1:1", "bucket": "Exports_2024"}}
    task = table_task("t1", ("src", "a"), ("dst", "b"), "lake")
    task["store"]["s3_config_bucket"] = "x"
    failed = _validate(write_config(tmp_path / "sync.yaml", SOURCES, stores, [task]))
    assert failed.returncode == 1
    assert "s3_configs 'lake': bucket: 'Exports_2024' is not a valid bucket name" in failed.stderr
    assert "task 't1' (tasks[0]): store.s3_config_bucket: 'x' is not a valid bucket name" in failed.stderr
    assert "ParamValidationError" not in failed.stderr and "Traceback" not in failed.stderr


def test_a_task_executor_is_one_of_the_two(tmp_path):
    task = {**table_task("t1", ("src", "a"), ("dst", "b"), "exports"), "executor": "threads"}
    assert _problems(tmp_path, [task]) == [
        "task 't1' (tasks[0]): executor: Input should be 'in_process' or 'multiprocess' (got 'threads')"]
    assert load_config(write_config(tmp_path / "ok.yaml", SOURCES, STORES, [{**task, "executor": "multiprocess"}]))
