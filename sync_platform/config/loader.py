"""YAML file -> validated SyncConfig, or a ConfigError listing every problem.

Each problem names the file, the task (or datasource / S3 config), the field and the valid values,
and all of them are found before anything runs. `${VAR}` and `${VAR:-default}` in any string are
replaced from the environment, so no secret needs to be written in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import LocalStoreConfig, SyncConfig

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    def __init__(self, path: str | os.PathLike, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(f"  - {p}" for p in problems))


def platform_home() -> Path:
    """Where the embedded default keeps its databases, exports and Dagster instance."""
    return Path(os.environ.get("SYNC_PLATFORM_HOME") or "~/.sync_platform").expanduser()


def _environment() -> Mapping[str, str]:
    return {"SYNC_PLATFORM_HOME": str(platform_home()), **os.environ}


def _interpolate(value: Any, where: str, env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{where}: environment variable {name} is not set (referenced as ${{{name}}})")
        return ""

    return _ENV_REF.sub(replace, value)


def _describe(loc: tuple, raw: dict) -> str:
    """('tasks', 0, 'table_to_table', 'run_config', 'limit') -> "task 'orders': run_config.limit"."""
    parts = list(loc)
    prefix = ""
    if parts[:1] == ["tasks"] and len(parts) > 1 and isinstance(parts[1], int):
        index = parts[1]
        tasks = raw.get("tasks") or []
        name = tasks[index].get("name") if index < len(tasks) and isinstance(tasks[index], dict) else None
        prefix = f"task {name!r} (tasks[{index}])" if name else f"tasks[{index}]"
        parts = parts[2:]
        if parts and parts[0] in ("table_to_table", "database_to_database"):  # the union's tag, not a field
            parts = parts[1:]
    elif parts[:1] in (["datasources"], ["s3_configs"]) and len(parts) > 1:
        prefix = f"{parts[0]} {parts[1]!r}"
        parts = parts[2:]
        if parts and parts[0] in ("local", "s3"):
            parts = parts[1:]
    field = ".".join(str(p) for p in parts)
    return ": ".join(p for p in (prefix, field) if p) or "top level"


def _message(error: dict, model_fields: dict[str, list[str]]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        parent = next((p for p in reversed(loc[:-1]) if isinstance(p, str) and p in model_fields), "top level")
        valid = model_fields.get(parent, [])
        return f"unknown field {loc[-1]!r}; valid fields: {', '.join(valid)}"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        return f"unknown value {ctx['tag']!r}; valid values: {ctx['expected_tags'].replace(chr(39), '')}"
    if kind in ("missing",):
        return "is required"
    text = error["msg"].removeprefix("Value error, ")
    if "input" in error and not isinstance(error["input"], (dict, list)) and "secret" not in str(loc).lower() and "url" not in loc:
        text += f" (got {error['input']!r})"
    return text


def _field_names() -> dict[str, list[str]]:
    from . import models

    names = {
        "top level": list(models.SyncConfig.model_fields),
        "run_config": list(models.RunConfig.model_fields),
        "source": ["datasource", "table (table_to_table)", "schema (database_to_database)"],
        "target": ["datasource", "table (table_to_table)", "schema (database_to_database)"],
        "store": list(models.StoreRef.model_fields),
        "table_to_table": list(models.TableToTableTask.model_fields),
        "database_to_database": list(models.DatabaseToDatabaseTask.model_fields),
        "tables": list(models.TableMapping.model_fields),
        "local": list(models.LocalStoreConfig.model_fields),
        "s3": list(models.S3StoreConfig.model_fields),
    }
    return names


def _cross_references(config: SyncConfig) -> list[str]:
    problems = []
    datasources = sorted(config.datasources)
    stores = sorted(config.s3_configs)
    seen: set[str] = set()
    for index, task in enumerate(config.tasks):
        where = f"task {task.name!r} (tasks[{index}])"
        if task.name in seen:
            problems.append(f"{where}: name: duplicate task name; task names must be unique")
        seen.add(task.name)
        for side in ("source", "target"):
            ref = getattr(task, side)
            if ref.datasource not in config.datasources:
                problems.append(
                    f"{where}: {side}.datasource: unknown datasource {ref.datasource!r}; "
                    f"valid values: {', '.join(datasources) or '(none declared under datasources)'}"
                )
        if (
            task.store.s3_config_id
            and task.run_config.s3_config_id
            and task.store.s3_config_id != task.run_config.s3_config_id
        ):
            problems.append(
                f"{where}: store.s3_config_id ({task.store.s3_config_id!r}) and run_config.s3_config_id "
                f"({task.run_config.s3_config_id!r}) disagree; give it once"
            )
        store_id = task.s3_config_id
        if store_id is None and len(stores) != 1:
            problems.append(
                f"{where}: store.s3_config_id: is required when several S3 configs exist; valid values: {', '.join(stores)}"
                if stores
                else f"{where}: store.s3_config_id: no S3 config (or local store) is declared under s3_configs"
            )
        elif store_id is not None and store_id not in config.s3_configs:
            problems.append(
                f"{where}: store.s3_config_id: unknown S3 config {store_id!r}; valid values: {', '.join(stores) or '(none)'}"
            )
        elif task.s3_config_bucket and isinstance(config.s3_configs.get(store_id or stores[0]), LocalStoreConfig):
            problems.append(f"{where}: store.s3_config_bucket: a local store has no buckets; remove the override")
    return problems


def load_config(path: str | os.PathLike) -> SyncConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(path, [f"not valid YAML: {error}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, ["top level must be a mapping with datasources, s3_configs and tasks"])

    problems: list[str] = []
    data = _interpolate(raw, "", _environment(), problems)
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as error:
        fields = _field_names()
        for e in error.errors():
            loc = e["loc"] + (e["ctx"]["discriminator"].strip("'"),) if e["type"] == "union_tag_invalid" else e["loc"]
            problems.append(f"{_describe(loc, raw)}: {_message(e, fields)}")
        raise ConfigError(path, problems) from None
    problems += _cross_references(config)
    if problems:
        raise ConfigError(path, problems)
    return config
