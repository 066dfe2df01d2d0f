"""Whole-process seconds of ``clvmodel train`` against the plain lifetimes pipeline (issue 16, target 4).

    PYTHONPATH=src python experiments/small_data_timing.py [TRANSACTIONS.parquet] [--repeat 3] [--only NAME ...]
        [--compare-src OTHER/src]

Default file: ``/work/benchdata/tx_1M.parquet`` (1 M transactions, 126,060 customers). Every
measurement is a whole process, interpreter start to exit, run by this script and reaped with
``os.wait4`` (wall seconds, and the child's user + system CPU seconds from its rusage). One round
runs, one after the other:

* ``floor``       ``python -c "import pandas, duckdb, numpy, scipy.optimize"``: the imports no
  DuckDB + numpy + scipy pipeline avoids (a floor under ``clvmodel train``, not a target);
* ``lifetimes``   the benchmark's ``e2e_lifetimes`` worker (``experiments/benchmark.py --worker``):
  read Parquet, ``summary_data_from_transaction_data``, ``BetaGeoFitter``, ``GammaGammaFitter``,
  12-period CLV;
* ``no_tracking`` ``clvmodel train CONFIG --no-tracking`` as the console script runs it
  (``clvmodel.cli.main()``, the arguments in ``sys.argv``);
* ``tracked``     ``clvmodel train CONFIG`` logging to an existing sqlite store (its tables created
  once, untimed, before the first round, as the benchmark does);
* ``new_store``   the same, to a new sqlite store each round (the store's migrations are timed).

The config is the one ``experiments/benchmark.py``'s ``run_clvmodel_train`` writes (models
[bgnbd, gamma_gamma], model bgnbd, weeks, a 12-week horizon at 1 % per week, intervals draws 0,
tracking on). With ``--compare-src``, the three ``clvmodel train`` processes run a second time in each
round with ``PYTHONPATH`` set to that source tree (``old_no_tracking``, ``old_tracked``,
``old_new_store``: e.g. the main branch's ``src`` before a change), so that before and after are
measured side by side under the same load. Rounds alternate the processes; each is reported as the best of ``--repeat`` rounds
(wall, and the CPU of that same process), followed by the ratios against issue 16's targets:
``lifetimes / no_tracking >= 2`` and ``tracked - no_tracking <= 1.5 s``. Seconds are measured, never
asserted. Run it on an otherwise quiet machine; it prints ``os.getloadavg()`` before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARK = HERE / "benchmark.py"
DEFAULT_SOURCE = Path("/work/benchdata/tx_1M.parquet")
#: The benchmark's CLV settings (experiments/benchmark.py: HORIZON, DISCOUNT_RATE).
HORIZON, DISCOUNT_RATE = 12, 0.01
#: Issue 16, target 4.
SPEED_UP_TARGET = 2.0
TRACKING_EXTRA_TARGET = 1.5

#: The console script: ``clvmodel`` calls ``clvmodel.cli.main()`` with the arguments in sys.argv.
_TRAIN = "import sys; from clvmodel.cli import main; sys.argv[0] = 'clvmodel'; main()"
_FLOOR = "import pandas, duckdb, numpy, scipy.optimize"
_CREATE_STORE = "import mlflow, os; mlflow.MlflowClient(os.environ['MLFLOW_TRACKING_URI']).search_experiments()"


def write_config(folder: Path, source: Path) -> Path:
    """The config of ``benchmark.run_clvmodel_train`` (tracking on; ``--no-tracking`` turns it off)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "benchmark.yaml"
    config.write_text(
        "\n".join(
            [
                "name: benchmark",
                f"data: {{source: '{source}'}}",
                "time_unit: week",
                "models: [bgnbd, gamma_gamma]",
                "model: bgnbd",
                f"clv: {{horizon: {HORIZON}, discount_rate: {DISCOUNT_RATE}, margin: 1.0}}",
                "intervals: {draws: 0}",
                "tracking: {experiment: benchmark, enabled: true}",
                f"output: {{model_dir: '{folder / 'model'}'}}",
                "",
            ]
        )
    )
    return config


def run(command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, float]:
    """Run ``command`` to its end: wall seconds and the child's CPU seconds (user + system)."""
    with open(log, "wb") as out:
        clock = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - clock
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... exited {proc.returncode}; log {log}:\n"
                           + log.read_text(errors="replace")[-3000:])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (best of)")
    parser.add_argument("--only", nargs="*", help="run only these processes (floor lifetimes no_tracking tracked new_store)")
    parser.add_argument("--workdir", type=Path, help="keep logs and stores here (default: a temporary folder)")
    parser.add_argument("--compare-src", type=Path, help="also run clvmodel train from this source tree (old_*)")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="small_data_timing."))
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    store = work / "tracked" / "mlflow.db"
    config_plain = write_config(work / "no_tracking", args.source)
    config_tracked = write_config(work / "tracked", args.source)
    params = work / "lifetimes.params.json"
    params.write_text(json.dumps({"source": str(args.source), "result": str(work / "lifetimes.result.json")}))
    tracked_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    run([python, "-c", _CREATE_STORE], work / "create_store.log", env=tracked_env, cwd=store.parent)

    def new_store(round_: int) -> tuple[list[str], dict[str, str], Path]:
        folder = work / f"new_store_{round_}"
        config = write_config(folder, args.source)
        return [python, "-c", _TRAIN, "train", str(config)], {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}, folder

    processes = {
        "floor": lambda r: ([python, "-c", _FLOOR], env, work),
        "lifetimes": lambda r: ([python, str(BENCHMARK), "--worker", "e2e_lifetimes", str(params)], env, work),
        "no_tracking": lambda r: ([python, "-c", _TRAIN, "train", str(config_plain), "--no-tracking"], env, config_plain.parent),
        "tracked": lambda r: ([python, "-c", _TRAIN, "train", str(config_tracked)], tracked_env, store.parent),
        "new_store": new_store,
    }
    if args.compare_src:
        old_env = {**env, "PYTHONPATH": str(args.compare_src.resolve())}
        old_store = work / "old_tracked" / "mlflow.db"
        old_plain, old_tracked = write_config(work / "old_no_tracking", args.source), write_config(work / "old_tracked", args.source)
        run([python, "-c", _CREATE_STORE], work / "create_old_store.log",
            env={**old_env, "MLFLOW_TRACKING_URI": f"sqlite:///{old_store}"}, cwd=old_store.parent)

        def old_new_store(round_: int) -> tuple[list[str], dict[str, str], Path]:
            command, process_env, folder = new_store(round_ + 1000)
            return command, {**process_env, "PYTHONPATH": old_env["PYTHONPATH"]}, folder

        processes.update({
            "old_no_tracking": lambda r: ([python, "-c", _TRAIN, "train", str(old_plain), "--no-tracking"], old_env, old_plain.parent),
            "old_tracked": lambda r: ([python, "-c", _TRAIN, "train", str(old_tracked)],
                                      {**old_env, "MLFLOW_TRACKING_URI": f"sqlite:///{old_store}"}, old_store.parent),
            "old_new_store": old_new_store,
        })
    names = [n for n in processes if not args.only or n in args.only or (n.startswith("old_") and n[4:] in args.only)]
    print(f"source {args.source}; work {work}; load {os.getloadavg()}", flush=True)
    best: dict[str, dict[str, float]] = {}
    for round_ in range(1, args.repeat + 1):
        for name in names:
            command, process_env, cwd = processes[name](round_)
            got = run(command, work / f"{name}.{round_}.log", env=process_env, cwd=cwd)
            print(f"  round {round_} {name:<12} wall {got['wall']:6.2f} s  cpu {got['cpu']:6.2f} s", flush=True)
            if name not in best or got["wall"] < best[name]["wall"]:
                best[name] = got
    print(f"load after {os.getloadavg()}")
    print(f"\nbest of {args.repeat} (whole process)        wall s   cpu s")
    for name in names:
        print(f"  {name:<30} {best[name]['wall']:7.2f} {best[name]['cpu']:7.2f}")
    if "lifetimes" in best and "no_tracking" in best:
        ratio = best["lifetimes"]["wall"] / best["no_tracking"]["wall"]
        print(f"lifetimes / no_tracking        {ratio:5.2f}x  (target >= {SPEED_UP_TARGET:g}x: "
              f"{'met' if ratio >= SPEED_UP_TARGET else 'NOT met'}); cpu "
              f"{best['lifetimes']['cpu'] / best['no_tracking']['cpu']:.2f}x")
    for prefix in ("", "old_"):
        plain = prefix + "no_tracking"
        if prefix and "lifetimes" in best and plain in best:
            print(f"lifetimes / {plain}    {best['lifetimes']['wall'] / best[plain]['wall']:5.2f}x; cpu "
                  f"{best['lifetimes']['cpu'] / best[plain]['cpu']:.2f}x")
        for tracked in (prefix + "tracked", prefix + "new_store"):
            if tracked in best and plain in best:
                extra = best[tracked]["wall"] - best[plain]["wall"]
                print(f"{tracked} - {plain}{' ' * max(1, 30 - len(tracked) - len(plain))}{extra:+5.2f} s wall "
                      f"(target <= {TRACKING_EXTRA_TARGET:g} s: {'met' if extra <= TRACKING_EXTRA_TARGET else 'NOT met'}); "
                      f"cpu {best[tracked]['cpu'] - best[plain]['cpu']:+5.2f} s")
    if "floor" in best and "lifetimes" in best:
        print(f"floor (imports only) {best['floor']['wall']:.2f} s = lifetimes / {best['lifetimes']['wall'] / best['floor']['wall']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
