"""The quickstart (smoke profile) into a temporary store, `python -m orchestrator ui` on a free
loopback port, the printed URL in headless Chromium: the study's parent run and, once its
+ is clicked as a person would, its nested trial runs are listed. The screenshot is kept
(tmp path, and /tmp/ui-screenshot.png). Then the export and rerun of its retrain run."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main
from orchestrator.commands.ui import free_port
from tests.browser import Browser, chromium_binary

pytestmark = pytest.mark.slow  # starts an MLflow server and a browser

ROOT = Path(__file__).resolve().parents[1]
EXPANDERS = "document.querySelectorAll('button[data-component-id*=\"runnamecellrenderer\"]')"
SCREENSHOT_COPY = Path("/tmp/ui-screenshot.png")


@pytest.fixture(scope="module")
def quickstart(quickstart_store):
    return quickstart_store.folder, quickstart_store.uri, quickstart_store.runs


def start_ui(uri: str, port: int, folder: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", "--tracking-uri",
                                uri, "--port", str(port)], cwd=folder, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    url = process.stdout.readline().strip()  # printed once the server answers
    assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/"), url
    return process, url


def stop_ui(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # it stops its server's process group
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def needed_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get; "
                    "it failed or there is no apt-get here)")
    return binary


def test_ui_lists_the_parent_and_its_nested_runs(quickstart, tmp_path):
    binary = needed_chromium()
    folder, uri, runs = quickstart
    parent = next(run for run in runs if run.data.tags["phase"] == "study")
    children = [run.info.run_name for run in runs if run is not parent]
    process, url = start_ui(uri, free_port(), folder)
    browser = Browser(binary, tmp_path / "profile")
    try:
        browser.open(url)
        browser.wait_for(f"document.body.innerText.includes({parent.info.run_name!r})")
        assert "Training runs" in browser.evaluate("document.body.innerText")  # not GenAI
        browser.wait_for(f"{EXPANDERS}.length > 0")
        browser.evaluate(f"{EXPANDERS}.forEach(button => button.click())")
        browser.wait_for(" && ".join(f"document.body.innerText.includes({name!r})"
                                     for name in children))
        table = browser.evaluate("document.querySelector('.ag-root').innerText")
        page = browser.evaluate("document.body.innerText")
        shot = browser.screenshot(tmp_path / "ui-runs-table.png")
        shutil.copyfile(shot, SCREENSHOT_COPY)
    finally:
        browser.close()
        stop_ui(process)
    assert all(name in table for name in [parent.info.run_name, *children])
    assert len(children) == 4 and f"{len(runs)} matching runs" in page
    assert process.returncode is not None and os.path.getsize(shot) > 10_000


def test_ui_run_pages_show_the_tables_and_plots(quickstart, tmp_path):
    """The parent run's artifacts page lists results/ and plots/ (its pareto.png open); a
    search run's page opens on plots/arch_weights.png. Screenshots kept beside the first."""
    binary = needed_chromium()
    folder, uri, runs = quickstart
    parent = next(run for run in runs if run.data.tags["phase"] == "study")
    search = next(run for run in runs if run.data.tags["phase"] == "search")
    process, url = start_ui(uri, free_port(), folder)
    base = url.split("#")[0]
    experiment = parent.info.experiment_id
    browser = Browser(binary, tmp_path / "profile")
    pages = {}
    try:
        for name, run, artifact in (("parent", parent, "plots/pareto.png"),
                                    ("search", search, "plots/arch_weights.png")):
            browser.open(f"{base}#/experiments/{experiment}/runs/{run.info.run_id}/"
                         f"artifacts/{artifact}")
            browser.wait_for("document.body.innerText.includes('plots')")
            browser.wait_for(f"document.body.innerText.includes({artifact.split('/')[-1]!r})")
            browser.wait_for("[...document.images].some(i => i.complete && "
                             "i.naturalWidth > 300)")  # the selected PNG, drawn
            pages[name] = browser.evaluate("document.body.innerText")
            shot = browser.screenshot(tmp_path / f"ui-{name}-run.png")
            shutil.copyfile(shot, SCREENSHOT_COPY.with_name(f"ui-{name}-run.png"))
    finally:
        browser.close()
        stop_ui(process)
    assert "results" in pages["parent"] and parent.info.run_name in pages["parent"]
    assert "genotype.json" in pages["search"] and search.info.run_name in pages["search"]


def test_export_and_rerun_of_the_retrain_run(quickstart_store, tmp_path, capsys):
    """A retrain run of the quickstart, exported, then rerun on CPU: nothing differs from what
    it ran with, and the rerun's test PSNR, SSIM and loss equal the run's to 1e-6."""
    uri, runs = quickstart_store.uri, quickstart_store.runs
    retrain = next(run for run in runs if run.data.tags["phase"] == "retrain"
                   and "dedup_of" not in run.data.tags)
    assert main(["export", retrain.info.run_id, "--out", str(tmp_path / "export"),
                 "--tracking-uri", uri]) == 0
    assert (tmp_path / "export" / "reproducibility.json").is_file()
    uri = quickstart_store.copy(tmp_path)  # the rerun's runs go to a copy: the store stays
    assert main(["rerun", retrain.info.run_id, "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), "--verbose", "0"]) == 0
    assert "differs" not in capsys.readouterr().out  # same code, packages, data and protocol
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quickstart").experiment_id
    (parent,) = client.search_runs([experiment], f"tags.rerun_of = '{retrain.info.run_id}'")
    (again,) = client.search_runs([experiment], "tags.phase = 'retrain' and "
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert again.data.tags["arch_hash"] == retrain.data.tags["arch_hash"]
    assert again.data.tags["seed"] == retrain.data.tags["seed"]
    for key in ("test/embedded/sigma25/psnr", "test/embedded/sigma25/ssim", "train/loss"):
        # on CPU a rerun is deterministic: the same seed, data and order of operations
        assert again.data.metrics[key] == pytest.approx(retrain.data.metrics[key], abs=1e-6)


def test_a_rerun_names_what_differs_and_strict_does_not_start(quickstart_store, tmp_path, capsys):
    """A run recorded under another commit and package set: `rerun` prints a line naming both
    commits (and one for the packages); `--strict` exits 2 on one error line, logs nothing."""
    uri = quickstart_store.copy(tmp_path)
    client = MlflowClient(uri)
    retrain = next(run for run in quickstart_store.runs if run.data.tags["phase"] == "retrain"
                   and "dedup_of" not in run.data.tags)
    now = retrain.data.tags["git.commit"]
    client.set_tag(retrain.info.run_id, "git.commit", "0123456789ab" + "0" * 28)
    client.set_tag(retrain.info.run_id, "package_set", "feedfacefeedface")
    before = len(client.search_runs([retrain.info.experiment_id]))
    assert main(["rerun", retrain.info.run_id, "--tracking-uri", uri, "--strict",
                 "--storage", str(tmp_path / "runs"), "--verbose", "0"]) == 2
    out, err = capsys.readouterr()
    differs = [line for line in out.splitlines() if "differs:" in line]
    assert len(differs) == 2, out
    assert "0123456789ab" in differs[0] and now[:12] in differs[0]
    assert "feedfacefeedface" in differs[1]
    assert err.count("\n") == 1 and err.startswith("error: ") and "--strict" in err
    assert len(client.search_runs([retrain.info.experiment_id])) == before


def test_the_html_report_opens_from_disk_with_its_tables_and_pictures(quickstart, tmp_path):
    """`report --html`: one file, opened from disk (no server), shows the results table and
    pictures that loaded (decoded, with a width); it fetches nothing."""
    binary = needed_chromium()
    folder, uri, runs = quickstart
    parent = next(run for run in runs if run.data.tags["phase"] == "study")
    page = tmp_path / "report" / "quickstart.html"
    assert main(["report", parent.info.run_id, "--tracking-uri", uri, "--html", str(page),
                 "--storage", str(tmp_path / "none")]) == 0
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    browser = Browser(binary, tmp_path / "profile")
    try:
        browser.open(page.as_uri())  # about:blank is 'complete' too: wait for this page
        browser.wait_for("document.title.startsWith('Study') && "
                         "document.readyState === 'complete'")
        headers = browser.evaluate(
            "[...document.querySelectorAll('table th')].map(th => th.innerText)")
        assert any("PSNR" in header for header in headers), headers
        cells = browser.evaluate("document.querySelectorAll('table td').length")
        assert cells >= 2
        loaded = browser.evaluate("[...document.images].filter(i => i.complete && "
                                  "i.naturalWidth > 0).map(i => i.alt)")
        assert any(name.startswith("results/") for name in loaded), loaded
        assert any(name.startswith("pictures/") for name in loaded), loaded
        assert "Provenance" in browser.evaluate("document.body.innerText")
    finally:
        browser.close()
