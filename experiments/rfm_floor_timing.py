"""RFM summary and calibration/holdout split vs the same-day floor, side by side (issue 16, target 1).

    PYTHONPATH=$PWD/src python experiments/rfm_floor_timing.py [--source /work/benchdata/tx_10M.parquet]
        [--repeat 3] [--base-src /path/to/other/checkout/src] [--workdir /tmp/rfm-floor]

Runs the benchmark's own workers (:func:`benchmark.run_worker`, each in a fresh process):
``rfm_duckdb_days`` (the same-day floor: two GROUP BYs, fetched as a DataFrame), ``rfm_clvmodel``
(load + checks + RFM summary) and ``split_clvmodel`` (the same with the calibration/holdout split),
in turn, ``--repeat`` rounds, and prints the best wall seconds of each, its ratio to the best
floor, the worker's peak RSS (VmHWM) and the process CPU seconds (user + system of the child, so
imports included). With ``--base-src`` the two clvmodel workers also run against that source tree
(e.g. an export of main), alternating with ours in every round, so before and after share the
machine's load. The parameters are those of ``benchmark.main`` at 10 M rows (no memory limit).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark  # noqa: E402  (the workers measured are the benchmark's own)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/benchdata/tx_10M.parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base-src", type=Path, default=None, help="a second src tree to run the clvmodel workers on")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rfm-floor-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ours_src = Path(__file__).resolve().parents[1] / "src"
    trees = {"ours": ours_src, **({"base": args.base_src.resolve()} if args.base_src else {})}
    cal = {"calibration_end": benchmark.CALIBRATION_END.isoformat(), "observation_end": benchmark.OBSERVATION_END.isoformat()}
    steps = [("floor", "rfm_duckdb_days", "ours", {})]
    for tree in trees:
        steps += [(f"rfm {tree}", "rfm_clvmodel", tree, {}), (f"split {tree}", "split_clvmodel", tree, cal)]
    best: dict[str, dict[str, float]] = {}
    print(f"load: {benchmark.uptime()}")
    for round_ in range(args.repeat):
        for name, step, tree, extra in steps:
            env = {**os.environ, "PYTHONPATH": str(trees[tree])}
            before = _child_cpu()
            result = benchmark.run_worker(step, {"source": args.source, **extra}, workdir, f"r{round_}{tree}", env=env)
            cpu = _child_cpu() - before
            kept = best.get(name)
            if kept is None or result["seconds"] < kept["seconds"]:
                best[name] = {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"], "cpu": cpu,
                              "customers": result["customers"]}
    print(f"load: {benchmark.uptime()}")
    floor = best["floor"]["seconds"]
    print(f"{'step':<12} {'best s':>8} {'x floor':>8} {'peak MB':>8} {'proc CPU s':>10} {'customers':>10}")
    for name, row in best.items():
        print(f"{name:<12} {row['seconds']:8.2f} {row['seconds'] / floor:8.2f} {row['peak_rss_mb']:8.0f} "
              f"{row['cpu']:10.2f} {row['customers']:10,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
