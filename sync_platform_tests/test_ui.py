"""The Dagster UI, in a real browser (Debian's Chromium driven by Playwright), shows what the demo
did: the task's assets, their successful run and the passing data-diff check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import running_ui

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture
def demo_ui(tmp_path):
    """Run the demo, then `sync-platform ui` on its instance; yield the UI's base URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SYNC_PLATFORM_CONFIG")}
    env["SYNC_PLATFORM_HOME"] = str(tmp_path / "home")
    command = shutil.which("sync-platform", path=str(Path(sys.executable).parent)) or "sync-platform"
    subprocess.run([command, "demo"], check=True, capture_output=True, env=env, timeout=300)
    with running_ui(env, tmp_path / "ui.log") as base:
        yield base


def test_ui_shows_demo_assets_runs_and_checks(demo_ui, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)

        page.goto(f"{demo_ui}/runs")
        for job in ("demo_orders_sync", "demo_lineitem_sync", "demo_customers_sync"):
            expect(page.get_by_text(job).first).to_be_visible()
        expect(page.get_by_text("Success").first).to_be_visible()

        page.goto(f"{demo_ui}/assets/demo_orders/orders?view=checks")
        expect(page.get_by_text("data_diff").first).to_be_visible()
        expect(page.get_by_text("Passed").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "checks.png"))

        # The three assets of a table are told apart by the last part of their keys, which is what the
        # catalog's folder, the lineage graph and the sidebar show.
        page.goto(f"{demo_ui}/assets/demo_orders")
        for name in ("orders__source", "orders__export", "orders"):
            link = page.locator(f'a[href="/assets/demo_orders/{name}"]').first
            expect(link).to_be_visible()
            expect(link).to_have_text(re.compile(rf"^\s*(?:{name})+\s*$"))  # the key's last part, nothing else
        page.goto(f"{demo_ui}/assets/demo_orders/orders?view=lineage&lineageScope=upstream&lineageDepth=2")
        for name in ("orders__source", "orders__export"):
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        page.screenshot(path=str(tmp_path / "lineage.png"))

        page.goto(f"{demo_ui}/automation")
        expect(page.get_by_text("demo_large_orders_schedule").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "automation.png"))

        page.goto(f"{demo_ui}/assets/demo_lineitem_archive/lineitem_archive?view=partitions")
        expect(page.get_by_text("2025-12-01").first).to_be_visible()  # the monthly partitions
        page.get_by_text("2025-09-01").first.click()  # one run loaded all six; each has its own metadata
        expect(page.get_by_text(re.compile(r"^1,?978$")).first).to_be_visible()
        page.screenshot(path=str(tmp_path / "partitions.png"))

        page.goto(f"{demo_ui}/assets/demo_replica")  # the whole-database task: one entry per table
        for table in ("customer", "lineitem", "nation", "orders", "region"):
            expect(page.get_by_text(table, exact=True).first).to_be_visible()
        page.screenshot(path=str(tmp_path / "replica.png"))

        page.goto(f"{demo_ui}/assets/demo_lineitem/lineitem")
        expect(page.get_by_text(re.compile(r"59,?928")).first).to_be_visible()  # the imported row count
        page.screenshot(path=str(tmp_path / "lineitem.png"))
        browser.close()
