"""Many hosts: what the code location does when its runs may execute on other hosts than its own."""

from __future__ import annotations

import dagster as dg
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from sync_platform.defs import location

from .conftest import s3_store_config, table_task, write_config


class OtherHostRunLauncher(RunLauncher, ConfigurableClass):
    """Stands for K8sRunLauncher or EcsRunLauncher (not installed here): a launcher whose run
    workers start on other hosts. The code location only looks at its class."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data

    @property
    def inst_data(self):
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        raise NotImplementedError("a stand-in: never launches")

    def terminate(self, run_id: str) -> bool:
        return False


def test_a_local_store_is_refused_under_a_launcher_that_runs_elsewhere(tmp_path, monkeypatch):
    """Under a launcher that starts runs on other hosts, a task exporting to a local folder is left
    out (its job says why) and a task on S3 loads; under Dagster's own launcher both load."""
    config = write_config(
        tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/a.db", "dst": f"sqlite:///{tmp_path}/b.db"},
        {"scratch": {"type": "local", "path": str(tmp_path / "exports")}, "bucket": s3_store_config("exports-bucket")},
        [table_task("on_disk", ("src", "t"), ("dst", "t"), "scratch"),
         table_task("on_s3", ("src", "t"), ("dst", "t2"), "bucket")],
    )
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TEST_S3_KEY_ID", "k")
    monkeypatch.setenv("TEST_S3_SECRET", "s")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert location._launcher_elsewhere() is None
    both = location.build_definitions(config, location._launcher_elsewhere())
    assert "INVALID" not in (both.resolve_job_def("on_disk_sync").description or "")

    (home / "dagster.yaml").write_text(
        "run_launcher:\n  module: sync_platform_tests.test_hosts\n  class: OtherHostRunLauncher\n"
    )
    assert location._launcher_elsewhere() == "OtherHostRunLauncher"
    defs = location.build_definitions(config, location._launcher_elsewhere())
    description = defs.resolve_job_def("on_disk_sync").description
    assert description.startswith("INVALID TASK, left out of the code location:")
    assert ("task 'on_disk': its store 'scratch' is a folder of one host (type: local), but this Dagster instance "
            "launches runs with OtherHostRunLauncher, which starts them on other hosts") in description
    assert "INVALID" not in (defs.resolve_job_def("on_s3_sync").description or "")
    graph = defs.resolve_job_def("on_s3_sync").asset_layer.asset_graph
    assert dg.AssetKey(["on_s3", "t2"]) in graph.get_all_asset_keys()
