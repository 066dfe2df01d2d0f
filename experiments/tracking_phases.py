"""What a tracked ``clvmodel train`` spends on MLflow, phase by phase (issue 16, target 4).

    PYTHONPATH=src python experiments/tracking_phases.py [TRANSACTIONS.parquet] [--repeat 5]

Default file: ``/work/benchdata/tx_1M.parquet``; the config is ``experiments/small_data_timing.py``'s
(``write_config``: bgnbd + gamma_gamma, weeks, tracking on), logging to a sqlite store whose tables
are created once, untimed, before the first round. Each round runs one tracked ``clvmodel train``
process; inside it, before ``clvmodel.cli.main()``:

* the modules every train imports anyway (``clvmodel.cli``, ``clvmodel.train``, ``clvmodel.plots``:
  pandas, numpy, scipy, matplotlib) are imported untimed, so that what follows is what tracking adds;
* ``import mlflow`` is timed, then ``import mlflow.store.tracking.sqlalchemy_store`` (the sqlite
  store's module, which ``mlflow.set_experiment`` would otherwise import on first use: SQLAlchemy,
  alembic and the ORM's ``configure_mappers``);
* every function of :mod:`clvmodel.integrations.mlflow_tracking` that ``train._track`` calls is
  wrapped in a timer (wall and the process's CPU): ``run`` split into its enter (``set_experiment``
  and ``start_run``) and exit (``end_run``), ``log_data`` (one ``log_batch`` per run), the artifacts
  (``log_text``, ``log_table``, ``log_figure``, ``log_model``, ``log_artifact``), and ``_track`` whole.

Printed: each phase's best of ``--repeat`` rounds (wall and CPU seconds of the round with the best
``_track`` wall), and the load before and after. The process's own start-up and the untracked work
are not here: ``experiments/small_data_timing.py`` measures whole processes (``tracked`` against
``no_tracking``). Seconds are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from small_data_timing import _CREATE_STORE, DEFAULT_SOURCE, write_config  # noqa: E402

#: Runs in the child: timers around MLflow's imports and the tracking calls, then the console script.
_CHILD = r"""
import contextlib, json, os, sys, time
import clvmodel.cli, clvmodel.train, clvmodel.plots  # what every train imports anyway (untimed)
from clvmodel import train as pipeline
from clvmodel.integrations import mlflow_tracking as tracking

phases = {}

def add(name, wall, cpu):
    total = phases.setdefault(name, [0.0, 0.0, 0])
    total[0] += wall; total[1] += cpu; total[2] += 1

def clock():
    return time.perf_counter(), time.process_time()

w, c = clock(); import mlflow; add("import mlflow", time.perf_counter() - w, time.process_time() - c)
w, c = clock(); import mlflow.store.tracking.sqlalchemy_store
add("import the sqlite store module", time.perf_counter() - w, time.process_time() - c)

def timed(name, function):
    def wrapper(*args, **kwargs):
        w, c = clock()
        try:
            return function(*args, **kwargs)
        finally:
            add(name, time.perf_counter() - w, time.process_time() - c)
    return wrapper

for name in ("log_data", "log_text", "log_table", "log_figure", "log_model", "log_artifact"):
    setattr(tracking, name, timed(name, getattr(tracking, name)))
pipeline._track = timed("_track (whole)", pipeline._track)
plain_run = tracking.run

@contextlib.contextmanager
def run(*args, **kwargs):
    manager = plain_run(*args, **kwargs)
    w, c = clock()
    run_id = manager.__enter__()
    add("run enter (set_experiment, start_run)", time.perf_counter() - w, time.process_time() - c)
    try:
        yield run_id
    except BaseException:
        if not manager.__exit__(*sys.exc_info()):
            raise
    else:
        w, c = clock()
        manager.__exit__(None, None, None)
        add("run exit (end_run)", time.perf_counter() - w, time.process_time() - c)

tracking.run = run
sys.argv[0] = "clvmodel"
try:
    clvmodel.cli.main()
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
with open(os.environ["TRACKING_PHASES_OUT"], "w") as out:
    json.dump(phases, out)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (best of)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="tracking_phases."))
    try:
        return _measure(work, args.source, args.repeat)
    finally:  # the store, the configs and the rounds' models: nothing is kept
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path, source: Path, repeat: int) -> int:
    config = write_config(work, source)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    subprocess.run([sys.executable, "-c", _CREATE_STORE], env=env, cwd=work, check=True, capture_output=True)
    print(f"source {source}; work {work}; load {os.getloadavg()}", flush=True)
    best: dict[str, list[float]] | None = None
    for round_ in range(1, repeat + 1):
        result = work / f"phases.{round_}.json"
        done = subprocess.run([sys.executable, "-c", _CHILD, "train", str(config)], cwd=work,
                              env={**env, "TRACKING_PHASES_OUT": str(result)}, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"round {round_} exited {done.returncode}:\n{done.stderr[-3000:]}")
        phases = json.loads(result.read_text())
        whole = phases["_track (whole)"][0]
        print(f"  round {round_}: _track wall {whole:.3f} s", flush=True)
        if best is None or whole < best["_track (whole)"][0]:
            best = phases
    print(f"load after {os.getloadavg()}")
    assert best is not None
    print(f"\nround with the best _track wall (of {repeat})   calls   wall s   cpu s")
    for name, (wall, cpu, calls) in best.items():
        print(f"  {name:<40} {calls:5d} {wall:8.3f} {cpu:7.3f}")
    imports = sum(best[n][0] for n in ("import mlflow", "import the sqlite store module"))
    print(f"MLflow's imports {imports:.3f} s wall + _track {best['_track (whole)'][0]:.3f} s "
          f"(its work once mlflow and the store module are imported)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
