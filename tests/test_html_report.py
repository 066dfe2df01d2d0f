"""The one-page HTML report of a training run (issue 15): pure checks, then a real headless Chromium.

One tracked training run (apparel, a real MLflow sqlite store in a temp dir) with hostile channel
names is shared by the module. The browser test uses Debian's Chromium (``/usr/bin/chromium``),
installed by :func:`chromium` with apt-get when running as root and it is absent; elsewhere it skips
with the reason.
"""

from __future__ import annotations

import base64
import html.parser
import io
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clvmodel import html_report
from clvmodel.config import load_config
from clvmodel.modeldir import check_replaceable, verify
from clvmodel.train import REPORT_NAME, train

ROOT = Path(__file__).resolve().parents[1]
APPAREL = ROOT / "tests" / "data" / "apparel"
#: Channel names a customer table may hold: markup, quotes, an ampersand.
HOSTILE = {0: '<script>alert("x")</script> & \'online\'', 1: 'offline"><img src=x onerror=alert(1)>'}


class _Page(html.parser.HTMLParser):
    """The tags, attributes and text of a page (the standard library's parser: what a browser would build)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._open: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _metric_cells(page: str) -> list[tuple[str, float, str]]:
    """Every ``<td data-metric=... data-value=...>text</td>``: (metric, exact value, text shown)."""
    cells: list[tuple[str, float, str]] = []

    class Cells(html.parser.HTMLParser):
        current: dict[str, str | None] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.current = dict(attrs) if tag == "td" and "data-metric" in dict(attrs) else None

        def handle_data(self, data: str) -> None:
            if self.current is not None:
                cells.append((str(self.current["data-metric"]), float(str(self.current["data-value"])), data))
                self.current = None

    Cells().feed(page)
    return cells


@dataclass
class Run:
    result: Any
    page: str
    path: Path
    metrics: dict[str, float]
    artifacts: set[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tracked apparel run (pareto_nbd + gamma_gamma, channel = a column of hostile names)."""
    import mlflow

    tmp = tmp_path_factory.mktemp("html")
    customers = pd.read_csv(APPAREL / "customers.csv")
    customers["Source"] = customers["Channel"].map(HOSTILE)
    customers.to_csv(tmp / "customers.csv", index=False)
    saved_env, saved_cwd = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    os.chdir(tmp)  # the artifact store of a new sqlite experiment: ./mlruns
    try:
        config = load_config(ROOT / "configs" / "apparel.yaml", [
            f"data.source={APPAREL / 'transactions.csv'}", f"customers.source={tmp / 'customers.csv'}",
            "customers.channel=Source", "models=[pareto_nbd, gamma_gamma]", f"output.model_dir={tmp / 'model'}",
        ])
        result = train(config, track=True)
        client = mlflow.tracking.MlflowClient()
        metrics = dict(client.get_run(result.run_id).data.metrics)
        artifacts = {a.path for a in client.list_artifacts(result.run_id)}
        downloaded = Path(client.download_artifacts(result.run_id, REPORT_NAME, str(tmp)))
        yield Run(result, downloaded.read_text(encoding="utf-8"), tmp / "model" / REPORT_NAME, metrics, artifacts)
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


# --- pure checks ---------------------------------------------------------------------------------


def test_the_report_is_in_the_model_directory_and_the_run(run: Run) -> None:
    assert run.path.read_text(encoding="utf-8") == run.page
    assert REPORT_NAME in run.artifacts
    verify(run.path.parent)  # listed in the manifest: `clvmodel serve` accepts the directory ...
    check_replaceable(run.path.parent)  # ... and the next `clvmodel train` replaces it


def test_hostile_channel_names_are_escaped(run: Run) -> None:
    page = run.page
    for name in HOSTILE.values():
        assert name not in page
    assert "<script" not in page.lower() and "onerror=" not in page.replace("onerror=alert(1)&gt;", "")
    parsed = _Page()
    parsed.feed(page)
    assert {tag for tag, _ in parsed.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                                              "strong", "ul", "li", "div", "table", "tr", "th", "td", "figure", "img",
                                              "figcaption"}
    text = "".join(parsed.text)
    for name in HOSTILE.values():  # shown to the reader as the text it is
        assert name in text


def test_every_figure_is_embedded_as_a_png_with_its_note(run: Run) -> None:
    from PIL import Image

    parsed = _Page()
    parsed.feed(run.page)
    images = {str(a["data-figure"]): str(a["src"]) for tag, a in parsed.tags if tag == "img"}
    assert set(images) == set(run.result.figures) and "cohort_curves.png" in images
    for name, src in images.items():
        assert src.startswith("data:image/png;base64,"), name
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
        assert html_report.FIGURE_NOTES[name] in "".join(parsed.text)
    # Self-contained: no other resource is named anywhere.
    assert not [a for _, attrs in parsed.tags for k, a in attrs.items() if k in ("href", "src") and not str(a).startswith("data:")]


def test_leaderboard_selection_segments_and_acquisition_are_shown(run: Run) -> None:
    page, result = run.page, run.result
    assert 'id="leaderboard"' in page and 'id="segments"' in page and 'id="acquisition"' in page
    assert html_report._e(result.model.selection["reason"]) in page
    for segment in set(result.scores["segment"].astype(str)):
        assert f"<td>{segment}</td>" in page


def test_every_number_marked_as_a_metric_equals_the_mlflow_run(run: Run) -> None:
    cells = _metric_cells(run.page)
    names = {name for name, _, _ in cells}
    board = run.result.leaderboard
    expected = {f"holdout.{m}.{t}_{c}" for m, t in zip(board["model"], board["target"]) if t
                for c in ("pct_error", "rmse", "mae", "spearman", "top20_share")}
    assert expected <= names and "predicted_clv.total" in names and "customers_scored" in names
    assert sum(n.startswith("channel.") for n in names) == 6 * len(HOSTILE)
    for name, value, shown in cells:
        assert name in run.metrics, name
        assert value == pytest.approx(run.metrics[name], rel=1e-12, abs=1e-12), name
        digits = len(shown.split(".")[1]) if "." in shown else 0
        assert float(shown.replace(",", "")) == pytest.approx(run.metrics[name], abs=0.51 * 10 ** -digits), name


# --- a real browser --------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium: found, or installed with apt-get when running as root; else a skip with the reason."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no /usr/bin/chromium, and not root with apt-get to install Debian's chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("apt-get install chromium succeeded but /usr/bin/chromium is missing")
    return "/usr/bin/chromium"


def _browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=60)


def _heights(figures: Any) -> list[float]:
    """Each matplotlib figure's height on the page: its PNG's (80 dpi) in the 1100 px column (max-width 100 %)."""
    out = []
    for figure in figures:
        width, height = figure.get_size_inches() * 80
        out.append(height * min(1.0, 1100 / width))
    return out


def test_the_page_renders_in_headless_chromium(run: Run, chromium: str, tmp_path: Path) -> None:
    """Chromium loads the training page without a console message, lays out every image at its
    size, and the numbers it shows are the run's metrics (:func:`_check_in_browser`)."""
    started = time.perf_counter()
    _check_in_browser(chromium, run.path, run.page, run.metrics, _heights(run.result.figures.values()), tmp_path)
    assert time.perf_counter() - started < 60


def _check_in_browser(chromium: str, path: Path, page: str, metrics: dict[str, float], own: list[float],
                      tmp_path: Path) -> None:
    """The page at ``path`` (text ``page``) in headless Chromium, with no script of its own needed.

    ``--dump-dom`` gives the DOM Chromium built (its data-metric cells are compared with the MLflow
    run's ``metrics``), ``--screenshot`` renders it, and ``--enable-logging=stderr`` puts the
    console's messages on stderr, where none may appear (a control page shows one would be seen).
    A broken image would not show in the DOM; it shows in the render: an image that fails to
    decode is drawn as a small broken-image icon, so the height of the rendered page (a tall
    screenshot, its last non-white row) is compared with that of the same page without its images:
    together the images (``own``: each one's expected height) must add their heights, less half the
    smallest one's at most.
    """
    from PIL import Image

    control = tmp_path / "control.html"
    control.write_text('<p>x</p><script>console.error("control-error")</script>', encoding="utf-8")
    seen = _browse(chromium, tmp_path / "p0", "--dump-dom", control.as_uri())
    assert any("CONSOLE" in line and "control-error" in line for line in seen.stderr.splitlines()), seen.stderr[-2000:]

    dom = _browse(chromium, tmp_path / "p1", "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or ("ERROR" in line and ("Failed to load" in line or "net::" in line or "Refused" in line))]
    assert console == [], console
    cells = _metric_cells(dom.stdout)
    assert len(cells) == len(_metric_cells(page)) > 0
    for name, value, shown in cells:
        assert value == pytest.approx(metrics[name], rel=1e-12, abs=1e-9), name
        digits = len(shown.split(".")[1]) if "." in shown else 0
        assert float(shown.replace(",", "")) == pytest.approx(metrics[name], abs=0.51 * 10 ** -digits), name
    assert dom.stdout.count("<img ") == len(own)

    without = re.sub(r"<img [^>]*>", "", page)  # the page with no images at all
    assert "<img" not in without
    bare = tmp_path / "bare.html"
    bare.write_text(without, encoding="utf-8")
    heights = {}
    for name, url in (("page", path.as_uri()), ("bare", bare.as_uri())):
        shot = tmp_path / f"{name}.png"
        done = _browse(chromium, tmp_path / f"p-{name}", f"--screenshot={shot}", "--window-size=1200,12000",
                       "--hide-scrollbars", url)
        assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
        with Image.open(shot) as image:
            heights[name] = _content_height(image)
    print(f"rendered height {heights}, images {sum(own):.0f} px")
    assert heights["page"] - heights["bare"] >= sum(own) - 0.5 * min(own), (heights, own)


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parsed = _Page()
    parsed.feed(page)
    return parsed.tags


def _content_height(image: Any) -> int:
    """The last row of the screenshot that is not plain white: how tall the rendered page is."""
    grey = image.convert("L")
    width, height = grey.size
    pixels = grey.load()
    for y in range(height - 1, -1, -1):
        if any(pixels[x, y] < 250 for x in range(0, width, 4)):
            return y + 1
    return 0


# --- the budget run's page ---------------------------------------------------------------------------


@dataclass
class Budget:
    done: Any
    page: str
    path: Path
    metrics: dict[str, float]
    artifacts: set[str]


@pytest.fixture(scope="module")
def budget(run: Run, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`clvmodel budget` on the apparel run's scores and model, channels by their hostile names, tracked."""
    import mlflow
    import yaml

    from clvmodel.budget.files import budget_files

    tmp = tmp_path_factory.mktemp("budget")
    scores = tmp / "scores.csv"
    run.result.scores.to_csv(scores, index=False)
    customers = pd.read_csv(APPAREL / "customers.csv")
    customers["Source"] = customers["Channel"].map(HOSTILE)
    customers[["Id", "Source"]].to_csv(tmp / "customers.csv", index=False)
    cac = tmp / "cac.yaml"
    cac.write_text(yaml.safe_dump({"target_ratio": 3.0, "margin": 1.0, "budget": 5000,
                                   "channels": {HOSTILE[0]: {"cac": 20.0}, HOSTILE[1]: {"cac": 60.0}}}))
    output = tmp / "out" / "budget.csv"
    saved_env, saved_cwd = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    os.chdir(tmp)
    try:
        done = budget_files(scores, cac, output, customers=tmp / "customers.csv", model=str(run.path.parent),
                            customer_id_column="Id", channel_column="Source", experiment="budget")
        client = mlflow.tracking.MlflowClient()
        metrics = dict(client.get_run(done.run_id).data.metrics)
        artifacts = {a.path for a in client.list_artifacts(done.run_id)}
        path = output.with_suffix(".html")
        yield Budget(done, path.read_text(encoding="utf-8"), path, metrics, artifacts)
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def test_a_budget_run_writes_and_logs_its_page(budget: Budget) -> None:
    """``<stem>.html`` beside the table, logged to the run, hostile channel names escaped, the headline
    numbers equal to the run's budget.* metrics."""
    page = budget.page
    assert "budget.html" in budget.artifacts
    for name in HOSTILE.values():
        assert name not in page and html_report.escape(name) in page
    assert "<script" not in page.lower()
    images = [a for t, a in _tags(page) if t == "img"]
    assert len(images) == 1 and str(images[0]["src"]).startswith("data:image/png;base64,")
    cells = _metric_cells(page)
    assert {n for n, _, _ in cells} == {f"budget.{k}" for k in budget.done.result.summary()}
    for name, value, _ in cells:
        assert value == pytest.approx(budget.metrics[name], rel=1e-12, abs=1e-9), name


def test_the_budget_page_renders_in_headless_chromium(budget: Budget, chromium: str, tmp_path: Path) -> None:
    """As the training page: no console message, the DOM's numbers equal the run's, the chart renders."""
    from clvmodel.budget.report import ltv_cac_chart

    _check_in_browser(chromium, budget.path, budget.page, budget.metrics,
                      _heights([ltv_cac_chart(budget.done.result)]), tmp_path)
