"""Peak resident memory of ``clvmodel train``, phase by phase (issue 16: the leaderboard at 10 M rows).

What it measures: a thread samples this process's resident set (``VmRSS`` in /proc/self/status)
every ``--every`` seconds while :func:`clvmodel.train.train` runs one config. The pipeline's steps
are wrapped (the module attributes train() calls are replaced by timing wrappers, nothing else
changes), so each sample is charged to the innermost step running: read + RFM (DuckDB), the
challenger, the fits, the holdout forecasts, the leaderboard, the calibration table, scoring, the
segment boundaries, the figures, the report, the model directory. It prints per step the resident
set on entry and exit and the highest sample inside, then the run's peak (``VmHWM``, the kernel's
own high-water mark, which a sampler can miss by a few milliseconds) and where it was.

Linux only (/proc). Run from the repository root, e.g. the whole default leaderboard at 10 M rows::

    PYTHONPATH=$PWD/src nice -n 5 .venv/bin/python experiments/leaderboard_memory.py \\
        --config /tmp/lb/lb.yaml --model-dir /tmp/lbmem/model

``--models historical,bgnbd,gamma_gamma`` replaces the config's model list (e.g. to leave out the
slow GGom/NBD fit); ``--no-holdout`` drops the config's calibration end (no split); ``--json FILE``
writes the table as JSON as well. ``--track`` logs the MLflow
run as ``clvmodel train`` without ``--no-tracking`` does (to the store MLFLOW_TRACKING_URI names:
point it at a temporary one), charged to the step ``track``, e.g. the tracked BG/NBD +
Gamma-Gamma train of ``make bench``::

    MLFLOW_TRACKING_URI=sqlite:////tmp/lbmem/mlflow.db PYTHONPATH=$PWD/src nice -n 5 \\
        .venv/bin/python experiments/leaderboard_memory.py --config /tmp/lb/lb.yaml \\
        --model-dir /tmp/lbmem/model --models bgnbd,gamma_gamma --no-holdout --track

One run per process: the peak of a second run in the same process would start from the first
one's leftovers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

import yaml


def rss_mb(field: str = "VmRSS") -> float:
    """This process's ``field`` from /proc/self/status (``VmRSS`` now, ``VmHWM`` its peak), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not in /proc/self/status")


class Phases:
    """The stack of running steps and, per step, RSS on entry and exit and the highest sample."""

    def __init__(self) -> None:
        self.stack: list[str] = ["setup"]
        self.rows: dict[str, dict[str, float]] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()
        self.peak = (0.0, "setup")

    def _row(self, name: str) -> dict[str, float]:
        if name not in self.rows:
            self.order.append(name)
            self.rows[name] = {"enter": rss_mb(), "exit": float("nan"), "max": 0.0, "seconds": 0.0}
        return self.rows[name]

    def sample(self) -> None:
        value = rss_mb()
        with self.lock:
            name = self.stack[-1]
            row = self._row(name)
            row["max"] = max(row["max"], value)
            if value > self.peak[0]:
                self.peak = (value, name)

    @contextlib.contextmanager
    def step(self, name: str) -> Any:
        with self.lock:
            self._row(name)
            self.stack.append(name)
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.sample()
            with self.lock:
                self.stack.pop()
                self.rows[name]["exit"] = rss_mb()
                self.rows[name]["seconds"] += time.perf_counter() - clock


def wrap(phases: Phases, module: Any, attribute: str, name: str) -> None:
    """Replace ``module.attribute`` by a wrapper charging its run to step ``name``."""
    inner = getattr(module, attribute)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with phases.step(name):
            return inner(*args, **kwargs)

    setattr(module, attribute, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--model-dir", required=True, help="where the model directory goes (replaced)")
    parser.add_argument("--models", help="comma-separated model list replacing the config's")
    parser.add_argument("--every", type=float, default=0.02, help="seconds between samples")
    parser.add_argument("--json", help="also write the table here")
    parser.add_argument("--track", action="store_true", help="log the MLflow run (to MLFLOW_TRACKING_URI)")
    parser.add_argument("--no-holdout", action="store_true", help="drop the config's calibration_end (no split)")
    args = parser.parse_args()

    document = yaml.safe_load(Path(args.config).read_text())
    document.setdefault("output", {})["model_dir"] = args.model_dir
    document.setdefault("tracking", {})["enabled"] = args.track
    if args.no_holdout:
        document.pop("calibration_end", None)
    if args.models:
        document["models"] = args.models.split(",")
    config_path = Path(args.model_dir).parent / "leaderboard_memory.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(document))

    phases = Phases()
    from clvmodel import evaluate, html_report, io, rfm
    from clvmodel import train as training
    from clvmodel.config import load_config
    from clvmodel.integrations import mlflow_tracking

    for module, attribute, name in [
        (io, "load_transactions", "load"),
        (rfm, "summarise", "rfm"),
        (rfm, "repeat_transactions_by_period", "repeat_series"),
        (training, "fit_challenger", "challenger"),
        (training, "fit_models", "fit"),
        (training, "holdout_predictions", "holdout_predictions"),
        (evaluate, "leaderboard", "leaderboard"),
        (evaluate, "calibration_table", "calibration_table"),
        (training, "choose_primary", "choose_primary"),
        (training, "score", "score"),
        (training, "fix_segment_boundaries", "fix_segment_boundaries"),
        (training, "_figures", "figures"),
        (html_report, "render_train", "report"),
        (mlflow_tracking, "save_model_dir", "save_model_dir"),
    ]:
        wrap(phases, module, attribute, name)
    wrap(phases, training, "_from_transactions", "read_and_rfm (rest, DuckDB open)")
    wrap(phases, training, "_track", "track")
    config = load_config(config_path)

    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            phases.sample()
            time.sleep(args.every)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    clock, cpu = time.perf_counter(), time.process_time()
    with phases.step("train (rest)"):
        result = training.train(config, track=args.track)
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    done.set()
    thread.join()

    print(f"models: {', '.join(config.models)}; customers {len(result.scores):,}; wall {wall:.1f} s, CPU {cpu:.1f} s")
    print(f"{'step':38s} {'enter MB':>9s} {'max MB':>9s} {'exit MB':>9s} {'seconds':>8s}")
    for name in phases.order:
        row = phases.rows[name]
        print(f"{name:38s} {row['enter']:9.0f} {row['max']:9.0f} {row['exit']:9.0f} {row['seconds']:8.2f}")
    hwm = rss_mb("VmHWM")
    print(f"peak RSS (VmHWM) {hwm:.0f} MB; highest sample {phases.peak[0]:.0f} MB in {phases.peak[1]}")
    print("leaderboard:")
    print(result.leaderboard.to_string(index=False) if result.leaderboard is not None else "none")
    if args.json:
        Path(args.json).write_text(json.dumps({"models": list(config.models), "wall": wall, "cpu": cpu,
                                               "peak_mb": hwm, "peak_step": phases.peak[1],
                                               "steps": {n: phases.rows[n] for n in phases.order}}, indent=2))


if __name__ == "__main__":
    main()
