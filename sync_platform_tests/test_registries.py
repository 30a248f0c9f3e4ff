"""The registries are the single source of truth for plug-in names, and a dialect that lacks a hook
the diff or the load needs is refused when its class is defined, not mid-run."""

from __future__ import annotations

import inspect

import pytest

from sync_platform.config import ConfigError, load_config
from sync_platform.engine.dialects import DATABASES, Database, SqlDialect, database_for
from sync_platform.engine.dialects.sqlite import SQLiteDatabase, SQLiteDialect
from sync_platform.engine.diff.values import ALGORITHMS
from sync_platform.engine.formats import FORMATS
from sync_platform.engine.stores import STORES
from sync_platform.errors import SyncPlatformError, UnknownName

from .conftest import table_task, write_config

REGISTRIES = {"databases": DATABASES, "formats": FORMATS, "stores": STORES, "algorithms": ALGORITHMS}


def _hooks(base: type) -> list[str]:
    return sorted(name for name, member in inspect.getmembers(base) if getattr(member, "__isabstractmethod__", False))


@pytest.mark.parametrize("base, complete", [(SqlDialect, SQLiteDialect), (Database, SQLiteDatabase)],
                         ids=["SqlDialect", "Database"])
def test_a_dialect_missing_any_one_hook_is_refused_at_class_definition(base, complete):
    hooks = _hooks(base)
    assert len(hooks) >= 5
    for missing in hooks:
        body = {name: getattr(complete, name) for name in hooks if name != missing}
        with pytest.raises(TypeError) as caught:
            type(f"Without_{missing}", (base,), body)
        assert str(caught.value).endswith(f"Without_{missing} does not implement {missing} (see docs/new-dialect.md)")
    type("Whole", (base,), {name: getattr(complete, name) for name in hooks})  # every hook: accepted


@pytest.mark.parametrize("registry", REGISTRIES.values(), ids=REGISTRIES.keys())
def test_an_unknown_name_carries_its_kind_value_and_the_registered_names(registry):
    with pytest.raises(UnknownName) as caught:
        registry["no-such-thing"]
    error = caught.value
    assert isinstance(error, SyncPlatformError) and isinstance(error, ValueError)
    assert (error.kind, error.value) == (registry.kind, "no-such-thing")
    assert set(error.valid) == set(registry) and len(error.valid) >= 2
    assert all(name in str(error) for name in registry)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(next(iter(registry)), object, "a duplicate")


def test_configuration_errors_list_what_the_registries_hold(tmp_path):
    """validate's valid values come from the registries, so a new plug-in is offered without
    touching the configuration's code."""
    task = table_task("t1", ("src", "a"), ("dst", "b"), "exports", algorithm="sha1diff", batch_file_format="json")
    path = write_config(tmp_path / "sync.yaml", {"src": "oracle://db/x", "dst": "sqlite:///d.db"},
                        {"exports": {"type": "ftp", "path": "/tmp/x"}}, [task])
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = str(caught.value)
    for registry, field in ((ALGORITHMS, "run_config.algorithm"), (FORMATS, "run_config.batch_file_format")):
        line = next(line for line in problems.splitlines() if field in line)
        assert all(repr(name) in line for name in registry), line
    scheme_line = next(line for line in problems.splitlines() if "datasources 'src'" in line)
    assert all(name in scheme_line for name in DATABASES), scheme_line
    store_line = next(line for line in problems.splitlines() if "s3_configs 'exports'" in line)
    assert all(name in store_line for name in STORES), store_line


def test_database_for_names_the_schemes_it_knows():
    with pytest.raises(UnknownName) as caught:
        database_for("oracle://db/x")
    assert str(caught.value) == "unsupported URL scheme 'oracle'; valid schemes: " + ", ".join(sorted(DATABASES))
