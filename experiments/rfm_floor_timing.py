"""RFM summary and calibration/holdout split vs the same-day floor, side by side (issue 16, target 1).

    PYTHONPATH=$PWD/src python experiments/rfm_floor_timing.py [--source /work/benchdata/tx_10M.parquet]
        [--repeat 3] [--base-src /path/to/other/checkout/src] [--workdir /tmp/rfm-floor]

Runs the benchmark's own workers (:func:`benchmark.run_worker`, each in a fresh process):
``rfm_duckdb_days`` (the same-day floor: two GROUP BYs, fetched as a DataFrame), ``rfm_clvmodel``
(load + checks + RFM summary) and ``split_clvmodel`` (the same with the calibration/holdout split),
in turn, ``--repeat`` rounds, and prints the best wall seconds of each, its ratio to the best
floor, the worker's peak RSS (VmHWM), and the least CPU seconds of the step's processes (user +
system of the child, all threads) less the same worker's CPU on a 3-row file (interpreter start
and imports): on a shared, loaded machine the CPU ratio is the steadier one. With ``--base-src`` the two clvmodel workers also run against that source tree
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
    tiny = workdir / "tiny.parquet"
    import datetime as dt

    import pandas as pd

    pd.DataFrame({"customer_id": ["1", "2", "1"], "date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2025, 12, 30)],
                  "amount": [1.0, 2.0, 3.0]}).to_parquet(tiny)
    overhead: dict[str, float] = {}
    for name, step, tree, extra in steps:  # the fixed cost of each worker process (start, imports)
        env = {**os.environ, "PYTHONPATH": str(trees[tree])}
        before = _child_cpu()
        benchmark.run_worker(step, {"source": str(tiny), **extra}, workdir, f"tiny{tree}", env=env)
        overhead[name] = _child_cpu() - before
    print(f"load: {benchmark.uptime()}")
    for round_ in range(args.repeat):
        for name, step, tree, extra in steps:
            env = {**os.environ, "PYTHONPATH": str(trees[tree])}
            before = _child_cpu()
            result = benchmark.run_worker(step, {"source": args.source, **extra}, workdir, f"r{round_}{tree}", env=env)
            cpu = _child_cpu() - before
            kept = best.get(name)
            if kept is None or result["seconds"] < kept["seconds"]:
                best[name] = {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"],
                              "customers": result["customers"], "cpu": min(cpu, kept["cpu"]) if kept else cpu}
            else:
                kept["cpu"] = min(kept["cpu"], cpu)
    print(f"load: {benchmark.uptime()}")
    floor = best["floor"]["seconds"]
    floor_cpu = best["floor"]["cpu"] - overhead["floor"]
    print(f"{'step':<12} {'best s':>8} {'x floor':>8} {'peak MB':>8} {'CPU s':>7} {'start':>6} {'work':>6} "
          f"{'x floor':>8} {'customers':>10}")
    for name, row in best.items():
        work = row["cpu"] - overhead[name]
        print(f"{name:<12} {row['seconds']:8.2f} {row['seconds'] / floor:8.2f} {row['peak_rss_mb']:8.0f} "
              f"{row['cpu']:7.2f} {overhead[name]:6.2f} {work:6.2f} {work / floor_cpu:8.2f} {row['customers']:10,}")
    print("(CPU s: least over the rounds; start: the same worker on a 3-row file; work = CPU s - start)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
