"""Many hosts: what the code location does when its runs may execute on other hosts than its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from sync_platform.defs import location

from .conftest import _free_port, graphql, s3_store_config, table_task, wait_for, write_config

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_image_build_steps_install_a_code_server_that_serves_over_grpc(tmp_path):
    """deploy/Dockerfile's second build step (the project's wheel, offline) into a fresh venv, and
    the image's entrypoint from that venv, outside the repository: the code server validates the
    file, serves the location over gRPC, and a webserver on deploy/workspace.yaml lists its jobs.
    The first step's packages (the index's) are this environment's, through a .pth file."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = venv.glob("lib/python3*/site-packages")
    [ours] = [p for p in sys.path if p.endswith("site-packages") and Path(p, "dagster").is_dir()]
    (site / "step_one_packages.pth").write_text(ours + "\n")
    subprocess.run(["bash", str(ROOT / "deploy/image/install.sh"), "project", str(venv)], check=True, timeout=300)
    where = subprocess.run([str(venv / "bin/python"), "-c", "import sync_platform; print(sync_platform.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(site)), where  # the wheel's copy, not this repository

    config = write_config(
        tmp_path / "sync.yaml", {"src": f"sqlite:///{tmp_path}/a.db", "dst": f"sqlite:///{tmp_path}/b.db"},
        {"x": {"type": "local", "path": str(tmp_path / "exports")}},
        [table_task("copy", ("src", "t"), ("dst", "t"), "x")],
    )
    port = _free_port()
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "SYNC_PLATFORM_CONFIG": str(config),
           "DAGSTER_HOME": str(tmp_path / "home"), "SYNC_PLATFORM_CODE_HOST": "127.0.0.1",
           "SYNC_PLATFORM_CODE_PORT": str(port)}
    (tmp_path / "home").mkdir()
    with ExitStack() as stack:
        code_server = _started(stack, ["bash", str(ROOT / "deploy/image/entrypoint.sh"), "code-server"], env,
                               tmp_path / "code_server.log", tmp_path)
        wait_for(lambda: subprocess.run([str(venv / "bin/python"), "-m", "dagster", "api", "grpc-health-check", "-p",
                                         str(port)], capture_output=True).returncode == 0 or code_server.poll(),
                 "the code server's gRPC health check", timeout=120)
        assert code_server.poll() is None, (tmp_path / "code_server.log").read_text()
        web = _free_port()
        webserver = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(ROOT / "deploy/workspace.yaml"),
                     "-h", "127.0.0.1", "-p", str(web)]
        _started(stack, webserver, env, tmp_path / "webserver.log", tmp_path)
        base = f"http://127.0.0.1:{web}"
        wait_for(lambda: _answers(base), "the webserver", timeout=120)
        data = graphql(base, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name "
                             "location { name } jobs { name } } } } }")
    [repository] = data["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "sync_platform"
    assert {"copy_sync", "clean_source", "clean_exports"} <= {job["name"] for job in repository["jobs"]}


def test_the_image_entrypoint_refuses_a_missing_or_broken_configuration(tmp_path):
    entrypoint = ["bash", str(ROOT / "deploy/image/entrypoint.sh"), "code-server"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SYNC_PLATFORM_CONFIG": str(tmp_path / "absent.yaml")}
    missing = subprocess.run(entrypoint, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "is not a file: mount the tasks' YAML there" in missing.stderr
    broken = tmp_path / "sync.yaml"
    broken.write_text("datasources: {}\ntasks:\n  - name: x\n    type: table_to_table\n")
    refused = subprocess.run(entrypoint, env={**env, "SYNC_PLATFORM_CONFIG": str(broken)}, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1 and "problem(s) in" in refused.stderr


def _started(stack: ExitStack, command: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(["setsid", *command], env=env, cwd=cwd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)

    def stop():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(30)

    stack.callback(stop)
    return process


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/server_info", timeout=5):
            return True
    except OSError:
        return False
