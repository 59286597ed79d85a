"""The MLflow UI checked as a person would: `replenish ui` starts `mlflow server` on 127.0.0.1, and headless
Chromium opens the experiment, the run page and the run's plot, on a store with one logged run.

Chromium renders the pages (the UI is a JavaScript app: plain HTTP gets only an empty shell); --dump-dom
prints the DOM once the page settles. Needs the Debian package ``chromium`` (``make test`` installs it).

To refresh the README image: BROWSER_SCREENSHOT_DIR=docs/images pytest tests/system/test_browser_mlflow_ui.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import BROWSER, TIME_BUDGETS_MS, WINDOW, chromium, missing, render, visible_text
from tests.conftest import set_options
from tests.replenish.test_cli_commands import _free_port, wait_for_http
from tests.servers import stop_process

pytestmark = BROWSER

METRICS = {"lstm_rmsse": 0.8123, "seasonal_naive_rmsse": 1.0456}
PLOT = "plots/forecast_vs_actuals.png"
RUN_NAME = "browser-check"
# A fresh browser profile opens the UI in its GenAI view; the "Model training" switch sets this parameter.
MODEL_TRAINING = "workflowType=machine_learning"


@dataclass(frozen=True)
class LoggedRun:
    work_dir: Path
    experiment_id: str
    run_id: str


@dataclass(frozen=True)
class Ui:
    base_url: str
    run: LoggedRun
    log: Path


def _forecast_figure():  # noqa: ANN202 - matplotlib is imported lazily, as everywhere in tests
    """Actual daily sales of one synthetic series and a seasonal-naive forecast of its last 4 weeks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replenish.data.synthetic import SyntheticConfig, generate_synthetic

    sales = generate_synthetic(SyntheticConfig(n_items=1, n_stores=1, n_days=112)).sales
    actual = sales.set_index("date")["units"]
    history, future = actual.iloc[:-28], actual.iloc[-28:]
    forecast = history.iloc[-7:].to_numpy().tolist() * 4
    figure, axes = plt.subplots(figsize=(8, 3.2))
    axes.plot(actual.index, actual.to_numpy(), color="0.3", linewidth=1, label="actual units")
    axes.plot(future.index, forecast, color="tab:blue", linewidth=2, label="seasonal-naive forecast")
    axes.axvline(future.index[0], color="0.6", linestyle="--", linewidth=1)
    axes.set_title(f"{sales['item_id'].iloc[0]} @ {sales['store_id'].iloc[0]}: actuals and forecast")
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> LoggedRun:
    """A finished run with metrics and a PNG under plots/, logged the way the flows log them."""
    import matplotlib.pyplot as plt

    from replenish import tracking
    from replenish.settings import load_settings

    root = tmp_path_factory.mktemp("mlflow_ui")
    settings = load_settings(overrides=[f"work_dir={root / 'state'}", f"output_dir={root / 'output'}"])
    tracker = tracking.start_run(settings, RUN_NAME, {"flow": "training"})
    tracker.log_metrics(METRICS)
    figure = _forecast_figure()
    tracker.log_figure(figure, PLOT)
    plt.close(figure)
    tracker.end("FINISHED")
    return LoggedRun(work_dir=settings.work_dir, experiment_id=tracker.experiment_id, run_id=tracker.run_id)


@pytest.fixture(scope="module")
def ui(logged_run: LoggedRun) -> Iterator[Ui]:
    port = _free_port()
    root = logged_run.work_dir.parent
    log = root / "ui.log"
    command = [
        str(Path(sys.executable).parent / "replenish"),
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *set_options([f"work_dir={logged_run.work_dir}", f"output_dir={root / 'output'}"]),
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=root, stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        yield Ui(base_url=f"http://127.0.0.1:{port}", run=logged_run, log=log)
    finally:
        stop_process(process)


def test_experiment_page_lists_the_run(ui: Ui, tmp_path: Path) -> None:
    url = f"{ui.base_url}/#/experiments/{ui.run.experiment_id}?{MODEL_TRAINING}"
    expected = ["replenish", "Runs", RUN_NAME, "1 matching run"]

    dom = render(url, expected, tmp_path / "profile")

    assert not missing(expected, dom), visible_text(dom)[:3000]


def test_run_page_shows_the_metrics(ui: Ui, tmp_path: Path) -> None:
    url = f"{ui.base_url}/#/experiments/{ui.run.experiment_id}/runs/{ui.run.run_id}?{MODEL_TRAINING}"
    expected = [
        RUN_NAME,
        ui.run.run_id,
        "Finished",
        f"Metrics ({len(METRICS)})",
        *[f"{name} {value}" for name, value in METRICS.items()],
    ]  # metric table rows: name, value

    dom = render(url, expected, tmp_path / "profile")

    assert not missing(expected, dom), visible_text(dom)[:3000]


def test_artifacts_tab_lists_the_plots_folder(ui: Ui, tmp_path: Path) -> None:
    url = f"{ui.base_url}/#/experiments/{ui.run.experiment_id}/runs/{ui.run.run_id}/artifacts?{MODEL_TRAINING}"
    expected = ["Artifacts", "plots", "Select a file to preview"]

    dom = render(url, expected, tmp_path / "profile")

    assert not missing(expected, dom), visible_text(dom)[:3000]


def test_plot_artifact_is_displayed(ui: Ui, tmp_path: Path) -> None:
    url = f"{ui.base_url}/#/experiments/{ui.run.experiment_id}/runs/{ui.run.run_id}/artifacts/{PLOT}?{MODEL_TRAINING}"
    expected = [PLOT, Path(PLOT).name, f"{ui.run.work_dir.as_uri()}/mlartifacts/{ui.run.run_id}/artifacts/{PLOT}"]

    dom = render(url, expected, tmp_path / "profile")

    assert not missing(expected, dom), visible_text(dom)[:3000]
    # The preview is an <img> of the bytes the page fetched from the server (a blob: URL)...
    assert re.search(rf'<img [^>]*alt="{re.escape(PLOT)}"[^>]*src="blob:{re.escape(ui.base_url)}/', dom), dom[-3000:]
    # ...which the server read from the run's artifact folder.
    fetched = re.escape(f'"GET /get-artifact?path={PLOT.replace("/", "%2F")}&run_uuid={ui.run.run_id} HTTP/1.1" 200')
    assert re.search(fetched, ui.log.read_text()), ui.log.read_text()[-3000:]


def test_screenshot_of_the_plot_in_the_run_page(ui: Ui, tmp_path: Path) -> None:
    from PIL import Image

    url = f"{ui.base_url}/#/experiments/{ui.run.experiment_id}/runs/{ui.run.run_id}/artifacts/{PLOT}?{MODEL_TRAINING}"
    screenshot = tmp_path / "mlflow_run.png"

    result = chromium(f"--screenshot={screenshot}", url, profile=tmp_path / "profile", budget_ms=TIME_BUDGETS_MS[0])

    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(screenshot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert len(colours) > 500, "a blank or nearly blank page"  # text, icons, and the plot's anti-aliased lines
    assert screenshot.stat().st_size > 30_000
    if target := os.environ.get("BROWSER_SCREENSHOT_DIR"):
        shutil.copyfile(screenshot, Path(target) / screenshot.name)
