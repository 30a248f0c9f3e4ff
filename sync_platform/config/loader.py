"""YAML file -> validated SyncConfig, or a ConfigError listing every problem.

Each problem names the file, the task (or datasource / S3 config), the field and the valid values,
and all of them are found before anything runs. `${VAR}` and `${VAR:-default}` in any string are
replaced from the environment, so no secret needs to be written in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..engine.stores import STORES
from ..errors import SyncPlatformError
from .models import SyncConfig

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(SyncPlatformError, ValueError):
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


def _describe(loc: tuple, raw: dict, first_index: int = 0) -> str:
    """('tasks', 0, 'table_to_table', 'run_config', 'limit') -> "task 'orders': run_config.limit".
    `first_index`: the file's index of raw's first task (raw may hold one task of the file)."""
    parts = list(loc)
    prefix = ""
    if parts[:1] == ["tasks"] and len(parts) > 1 and isinstance(parts[1], int):
        index = parts[1]
        tasks = raw.get("tasks") or []
        name = tasks[index].get("name") if index < len(tasks) and isinstance(tasks[index], dict) else None
        prefix = f"task {name!r} (tasks[{index + first_index}])" if name else f"tasks[{index + first_index}]"
        parts = parts[2:]
        if parts and parts[0] in ("table_to_table", "database_to_database"):  # the union's tag, not a field
            parts = parts[1:]
    elif parts[:1] in (["datasources"], ["s3_configs"]) and len(parts) > 1:
        prefix = f"{parts[0]} {parts[1]!r}"
        parts = parts[2:]
        if parts and parts[0] in STORES:  # the union's tag, not a field
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
    if (
        "input" in error
        and not isinstance(error["input"], (dict, list))
        and "secret" not in str(loc).lower()
        and "url" not in loc
    ):
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
        **{name: list(entry.value.Config.model_fields) for name, entry in STORES.items()},
    }
    return names


def _cross_references(config: SyncConfig, first_index: int = 0) -> list[str]:
    problems = []
    datasources = sorted(config.datasources)
    stores = sorted(config.s3_configs)
    seen: set[str] = set()
    for index, task in enumerate(config.tasks, start=first_index):
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
                f"{where}: store.s3_config_id: is required when several S3 configs exist; valid values: "
                f"{', '.join(stores)}"
                if stores
                else f"{where}: store.s3_config_id: no S3 config (or local store) is declared under s3_configs"
            )
        elif store_id is not None and store_id not in config.s3_configs:
            problems.append(
                f"{where}: store.s3_config_id: unknown S3 config {store_id!r}; valid values: "
                f"{', '.join(stores) or '(none)'}"
            )
        elif task.s3_config_bucket and not STORES.get_value(config.s3_configs[store_id or stores[0]].type).has_buckets:
            problems.append(f"{where}: store.s3_config_bucket: a {config.s3_configs[store_id or stores[0]].type} store "
                            "has no buckets; remove the override")
    return problems


def _read(path: Path) -> dict:
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(path, [f"not valid YAML: {error}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, ["top level must be a mapping with datasources, s3_configs and tasks"])
    return raw


# schedule is `immediate` or a mapping {cron, timezone}: pydantic reports each branch it tried.
_SCHEDULE_BRANCHES = ("literal['immediate']", "CronSchedule")


def _other_branch(error: dict) -> bool:
    """An error of the schedule branch the operator did not write (a mapping is a cron schedule,
    a word is `immediate`): reporting it too only confuses."""
    loc, value = error["loc"], error.get("input")
    if "literal['immediate']" in loc:
        return isinstance(value, dict)
    if "CronSchedule" in loc and len(loc) == loc.index("CronSchedule") + 1:
        return not isinstance(value, dict)
    return False


def _validate(raw: dict, first_index: int = 0) -> tuple[SyncConfig | None, list[str]]:
    """The validated configuration of `raw` (None if invalid) and every problem found."""
    problems: list[str] = []
    data = _interpolate(raw, "", _environment(), problems)
    try:
        config = SyncConfig.model_validate(data)
    except ValidationError as error:
        fields = _field_names()
        for e in error.errors():
            if _other_branch(e):
                continue
            loc = e["loc"] + (e["ctx"]["discriminator"].strip("'"),) if e["type"] == "union_tag_invalid" else e["loc"]
            message = _message(e, fields)
            if "literal['immediate']" in loc:
                message = (f"unknown value {e.get('input')!r}; valid values: immediate, or a mapping "
                           "{cron: '<minute hour day-of-month month day-of-week>', timezone: <IANA zone>}")
            loc = tuple(part for part in loc if part not in _SCHEDULE_BRANCHES)
            problems.append(f"{_describe(loc, raw, first_index)}: {message}")
        return None, problems
    problems += _cross_references(config, first_index)
    return (None if problems else config), problems


def load_config(path: str | os.PathLike) -> SyncConfig:
    """The whole file, valid, or a ConfigError listing every problem (`sync-platform validate`)."""
    path = Path(path)
    config, problems = _validate(_read(path))
    if problems:
        raise ConfigError(path, problems)
    return config


@dataclass(frozen=True)
class BrokenTask:
    """A task of the file that is not valid on its own: what a code location shows in its place."""

    name: str  # its name, or tasks[i] when it has none
    problems: tuple[str, ...]


def load_valid_tasks(path: str | os.PathLike) -> tuple[SyncConfig, list[BrokenTask]]:
    """For a running platform: every task that is valid on its own, and each broken task with its
    problems, so one bad value in one task does not stop the others. Datasources and S3 configs
    that are invalid are left out (the tasks using them are broken, naming why); a file that
    cannot be read at all still raises ConfigError."""
    path = Path(path)
    raw = _read(path)
    config, problems = _validate(raw)
    if not problems:
        return config, []
    shared: dict[str, dict] = {}
    shared_problems: dict[tuple[str, str], list[str]] = {}
    for section in ("datasources", "s3_configs"):
        entries = raw.get(section) or {}
        shared[section] = {}
        for key, value in (entries.items() if isinstance(entries, dict) else []):
            _, found = _validate({section: {key: value}})
            if found:
                shared_problems[section, key] = found
            else:
                shared[section][key] = value
    valid, broken, names = [], [], set()
    tasks = raw.get("tasks") or []
    for index, task in enumerate(tasks if isinstance(tasks, list) else []):
        single, found = _validate({**shared, "tasks": [task]}, first_index=index)
        name = task.get("name") if isinstance(task, dict) else None
        for (section, key), why in shared_problems.items():
            if isinstance(task, dict) and key in _references(task, section):
                found.append(
                    f"task {name!r} (tasks[{index}]): uses {section[:-1]} {key!r}, which is invalid: " + "; ".join(why)
                )
        if single is not None and single.tasks[0].name in names:
            found.append(f"task {name!r} (tasks[{index}]): name: duplicate task name; task names must be unique")
        if found:
            broken.append(BrokenTask(str(name) if isinstance(name, str) else f"tasks[{index}]", tuple(found)))
        else:
            valid.append(single.tasks[0])
            names.add(single.tasks[0].name)
    config, _ = _validate({**shared, "tasks": []})
    return config.model_copy(update={"tasks": valid}), broken


def _references(task: dict, section: str) -> set[str]:
    """The datasource or S3 config ids a raw task names."""
    if section == "datasources":
        return {side.get("datasource") for side in (task.get("source"), task.get("target")) if isinstance(side, dict)}
    store, run_config = task.get("store") or {}, task.get("run_config") or {}
    return {store.get("s3_config_id"), run_config.get("s3_config_id")} if isinstance(store, dict) and isinstance(
        run_config, dict) else set()


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} twice (first at line {seen[key] + 1}); keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)
