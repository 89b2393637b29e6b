"""The UI as its users see it: ``dagster dev`` over an instance that trained a model family, read in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``; nothing is downloaded), and the landing sensor's first
tick on that instance launching nothing.

The family is segmentation with the light training config (two candidates): the cheapest training whose
``<family>_models`` metadata has both a comparison table and plots. Screenshots of what a user sees are left in
the test's tmp folder (``asset_graph.png``, ``comparison.png``, ``plot.png``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from dagster._core.scheduler.instigation import TickStatus

from customer_intel_tests.browser import browser_or_skip, headless_chromium, stop_group
from customer_intel_tests.conftest import free_port, pipeline_resources, published, restore_signals, write_raw

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAMILY = "segmentation"
LIGHT = PROJECT / "customer_intel_tests" / "fixtures" / "light_training.yaml"
PNG = "data:image/png;base64,"
WAIT = 60  # seconds any one page element may take to appear on a busy 2-core box

pytestmark = pytest.mark.e2e


def train_family(root: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """training_job on ``instance`` for ingest + FAMILY, with the light config: what a user's training run leaves."""
    from customer_intel.definitions import all_asset_checks, all_assets
    from customer_intel.jobs import training_job

    definitions = dg.Definitions(assets=all_assets, asset_checks=all_asset_checks, jobs=[training_job],
                                 resources=pipeline_resources(root / "raw", root / "warehouse"))
    keys = sorted(dg.AssetSelection.groups("ingest", FAMILY).resolve(definitions.resolve_asset_graph()))
    ops = {op: config for op, config in yaml.safe_load(LIGHT.read_text())["ops"].items() if op.startswith(f"{FAMILY}_")}
    return definitions.resolve_job_def("training_job").execute_in_process(
        instance=instance, asset_selection=keys, run_config={"ops": ops}, raise_on_error=False)


def markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the first pipe table in Markdown text."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return cells[0], [row for row in cells[2:]]


def start_dagster_dev(root: Path, home: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "DAGSTER_", "MLFLOW_", "AWS_"))}
    env.update({"DAGSTER_HOME": str(home), "CUSTOMER_INTEL_DATA_DIR": str(root),  # raw/, warehouse/, mlflow/ under root
                "CUSTOMER_INTEL_LANDING_INTERVAL_SECONDS": "1", "OMP_WAIT_POLICY": "PASSIVE"})
    log = open(root / "dagster_dev.log", "w")  # noqa: SIM115 -- the server writes to it while it runs; the child keeps its own copy
    try:
        return subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(PROJECT / "workspace.yaml")],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=restore_signals)
    finally:
        log.close()


def wait_for_code_location(process: subprocess.Popen, port: int, n_assets: int, log: Path) -> None:
    """Until the webserver answers with every asset of the code location (loaded, not only listening)."""
    import json

    query = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dagster dev exited {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                if len(json.load(response)["data"]["assetNodes"]) == n_assets:
                    return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"dagster dev did not serve the code location in 180 s:\n{log.read_text()[-3000:]}")


def landing_ticks(instance: dg.DagsterInstance) -> list:
    """The landing sensor's ticks on ``instance``, oldest first ([] before the daemon's first evaluation)."""
    for state in instance.all_instigator_state():
        if state.instigator_name == "raw_landing_sensor":
            return list(reversed(instance.get_ticks(state.instigator_origin_id, state.selector_id)))
    return []


class Page:
    """The Chromium page and the few reads the test makes of it."""

    def __init__(self, driver):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.By, self.wait = driver, By, WebDriverWait(driver, WAIT)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def skip_community_dialog(self) -> bool:
        """Click "Skip" on the "Join the Dagster community" dialog the UI opens on first load; True if it was there."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            button = WebDriverWait(self.driver, 5).until(
                lambda d: next(iter(d.find_elements(self.By.XPATH, "//div[@role='dialog'][.//*[contains(., 'Join the Dagster community')]]"
                                                                   "//button[normalize-space()='Skip']")), None))
        except TimeoutException:
            return False
        button.click()
        self.wait.until(lambda d: not d.find_elements(self.By.XPATH, "//*[contains(text(), 'Join the Dagster community')]"))
        return True

    def group_nodes(self, expected: int) -> dict[str, int]:
        """Group name -> the number of assets its collapsed node in the lineage graph counts (its status tags summed)."""
        def read(driver):
            nodes = driver.find_elements(self.By.CSS_SELECTOR, "svg foreignObject.group")
            out = {}
            for node in nodes:
                name = node.find_element(self.By.CSS_SELECTOR, "[data-tooltip]").get_attribute("data-tooltip")
                out[name] = [int(tag.text) for tag in node.find_elements(self.By.CSS_SELECTOR, ".BaseTag") if tag.text.strip().isdigit()]
            # the status tags arrive after the nodes: read once every node has its counts
            return out if len(out) >= expected and all(out.values()) else None

        return {name: sum(counts) for name, counts in self.wait.until(read).items()}

    def metadata_markdown(self, key: str):
        """Open the "[Show Markdown]" dialog of metadata entry ``key`` on an asset page; the dialog element."""
        link = self.wait.until(lambda d: next(iter(d.find_elements(
            self.By.XPATH, f"//tr[td[normalize-space()='{key}']]//a[contains(., 'Show Markdown')]")), None))
        link.click()
        return self.wait.until(lambda d: next(iter(d.find_elements(
            self.By.XPATH, f"//div[@role='dialog'][.//*[normalize-space()='{key}']]")), None))

    def close(self, dialog) -> None:
        dialog.find_element(self.By.XPATH, ".//button[normalize-space()='Close' or normalize-space()='OK' or normalize-space()='Done']").click()
        self.wait.until(lambda d: not d.find_elements(self.By.CSS_SELECTOR, "div[role='dialog']"))

    def table(self, dialog) -> tuple[list[str], list[list[str]]]:
        table = self.wait.until(lambda d: next(iter(dialog.find_elements(self.By.TAG_NAME, "table")), None))
        def text(cell) -> str:  # the DOM's text, also of columns scrolled out of the dialog's view
            return cell.get_attribute("textContent").strip()

        header = [text(th) for th in table.find_elements(self.By.CSS_SELECTOR, "thead th")]
        rows = [[text(td) for td in tr.find_elements(self.By.TAG_NAME, "td")] for tr in table.find_elements(self.By.CSS_SELECTOR, "tbody tr")]
        return header, rows

    def images(self, dialog) -> list[str]:
        """The src of every image in the dialog that the browser decoded (natural width > 0)."""
        images = self.wait.until(lambda d: dialog.find_elements(self.By.TAG_NAME, "img"))
        self.wait.until(lambda d: all(d.execute_script("return arguments[0].complete", img) for img in images))
        return [img.get_attribute("src") for img in images if self.driver.execute_script("return arguments[0].naturalWidth", img) > 0]


def test_ui_shows_every_group_and_a_family_comparison_and_opening_it_launches_no_training(tmp_path, small_frames):
    browser_or_skip()
    from customer_intel.definitions import defs

    root = tmp_path.resolve()  # the paths the sensor lists must be the ones ingestion recorded
    write_raw(small_frames, root / "raw", fmt="parquet")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    graph = defs.resolve_asset_graph()
    groups = Counter(graph.get(key).group_name for key in graph.materializable_asset_keys)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        trained = train_family(root, instance)
        assert trained.success, [e.message for e in trained.all_events if e.is_failure]
        models = instance.get_latest_materialization_event(dg.AssetKey(f"{FAMILY}_models")).asset_materialization.metadata
        comparison_header, comparison_rows = markdown_table(models["comparison"].value)
        plots = {key: re.findall(r"\((data:image/png;base64,[A-Za-z0-9+/=]+)\)", value.value) for key, value in models.items()
                 if isinstance(value, dg.MarkdownMetadataValue) and PNG in value.value}
        table = pd.read_parquet(published(root / "warehouse" / f"{FAMILY}_models")).set_index("candidate")
        assert plots and len(table) >= 2  # the page must have something to show

        port = free_port()
        server = start_dagster_dev(root, home, port)
        try:
            wait_for_code_location(server, port, len(graph.materializable_asset_keys), root / "dagster_dev.log")
            with headless_chromium() as driver:
                page = Page(driver)

                # the asset graph: one collapsed node per group of the code location, counting its assets
                page.open(f"http://127.0.0.1:{port}/asset-groups")
                page.skip_community_dialog()
                assert page.group_nodes(len(groups)) == dict(groups)
                driver.save_screenshot(str(root / "asset_graph.png"))

                # the family's models page: the latest materialisation's comparison table and plots
                page.open(f"http://127.0.0.1:{port}/assets/{FAMILY}_models")
                dialog = page.metadata_markdown("comparison")
                header, rows = page.table(dialog)
                driver.save_screenshot(str(root / "comparison.png"))
                assert (header, rows) == (comparison_header, comparison_rows)
                assert header[:2] == ["candidate", "champion"] and [r[0] for r in rows] == list(table.index)
                assert [r[0] for r in rows if r[1] == "✔"] == list(table.index[table["champion"]])
                for column in (c for c in header if c in table.columns and pd.api.types.is_float_dtype(table[c])):
                    shown = np.array([float(r[header.index(column)]) for r in rows])
                    np.testing.assert_allclose(shown, table[column].to_numpy(), atol=5e-4, err_msg=column)  # shown to 3 decimals
                page.close(dialog)
                for i, (key, images) in enumerate(plots.items()):
                    dialog = page.metadata_markdown(key)
                    assert page.images(dialog) == images, key  # every plot decoded, in order, the run's own bytes
                    if i == 0:
                        driver.save_screenshot(str(root / "plot.png"))
                    page.close(dialog)

            # meanwhile the daemon of `dagster dev` evaluates the landing sensor (every second or so)
            deadline = time.monotonic() + WAIT
            while not (ticks := landing_ticks(instance)) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:  # always: every process of `dagster dev`, by process group (the browser's own are stopped by headless_chromium)
            stop_group(server, grace=5)  # its own shutdown takes ~10 s (the code servers); the folder is thrown away

        # the landing sensor's first tick on this instance: the files this training run read are not new, so
        # opening the UI launched nothing
        assert ticks, (root / "dagster_dev.log").read_text()[-3000:]
        assert ticks[0].status == TickStatus.SKIPPED and ticks[0].run_ids == []
        assert f"(3 seen under {root / 'raw'}; first tick: 3 already read by training run {trained.run_id})" in ticks[0].skip_reason
        assert all(not t.run_ids for t in ticks)
        launched = [r.run_id for r in instance.get_runs() if "dagster/schedule_name" not in r.tags]
        assert launched == [trained.run_id]

    with socket.socket() as sock:  # nothing listens on the port any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    with socket.socket() as sock:  # and it can be listened on again (closed connections may linger in TIME_WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
