"""Issue 16, target 1: the RFM summary and the calibration/holdout split against the same-day floor.

    PYTHONPATH=src python experiments/split_floor.py [--source /work/benchdata/tx_10M.parquet] [--repeat 3]
        [--compare-src /path/to/other/src] [--memory-limit 700MB]

What it measures, in one process, alternately (floor, RFM, split, ... then the next round), best
of ``--repeat`` rounds, in wall seconds and CPU seconds (``time.process_time``: every thread of
the process, DuckDB's included; on a shared machine CPU seconds move less with the load than wall):

* ``floor``: experiments/benchmark.py's same-day floor (``rfm_duckdb_days``): DuckDB's two GROUP
  BYs (customer and day, then customer) over the Parquet file, fetched as a DataFrame;
* ``rfm`` and ``split``: what the benchmark's ``rfm_clvmodel`` / ``split_clvmodel`` time:
  :func:`clvmodel.io.load_transactions` and :func:`clvmodel.rfm.summarise` (weeks; the split with
  the benchmark's calibration end 2025-06-30 and observation end 2025-12-30);
* with ``--compare-src``: the same two with ``rfm.py`` of another checkout (e.g. main's) in
  place of this one's, to set a change against its base in the same process and rounds; the
  summaries are checked equal (frame and dtypes);
* with ``--memory-limit``: the same two with ``data.memory_limit`` set (DuckDB's ``memory_limit``
  for the whole load and summary), to set its time beside the default's; the summaries are checked
  equal to the default's. The peak memory is measured by experiments/leaderboard_memory.py (one
  run per process), not here.

It prints each run and the best-of ratios to the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd

from clvmodel import io, rfm
from clvmodel.config import DataConfig

CALIBRATION_END, OBSERVATION_END = dt.date(2025, 6, 30), dt.date(2025, 12, 30)
FLOOR = ("SELECT customer_id, count(*) AS days, min(date) AS first_day, max(date) AS last_day, "
         "sum(amount) AS spend FROM (SELECT customer_id, date, sum(amount) AS amount FROM read_parquet(?) "
         "GROUP BY customer_id, date) GROUP BY customer_id")


def floor(source: str) -> pd.DataFrame:
    con = duckdb.connect(":memory:")
    try:
        return con.execute(FLOOR, [source]).df()
    finally:
        con.close()


def summary(
    source: str, split: bool, rfm_sql: Callable[..., str] | None = None, memory_limit: str | None = None
) -> pd.DataFrame:
    """Load and summarise as the benchmark does; ``rfm_sql`` replaces :func:`clvmodel.rfm.rfm_sql` for the call,
    ``memory_limit`` is the config's ``data.memory_limit`` (as ``clvmodel train`` passes it to :func:`clvmodel.io.connect`)."""
    original = rfm.rfm_sql
    rfm.rfm_sql = rfm_sql or original
    con = io.connect(memory_limit=memory_limit)
    try:
        io.load_transactions(con, DataConfig(source=source, memory_limit=memory_limit))
        dates = {"calibration_end": CALIBRATION_END, "observation_end": OBSERVATION_END} if split else {}
        return rfm.summarise(con, time_unit="week", days="days", **dates).summary
    finally:
        con.close()
        rfm.rfm_sql = original


def other_rfm_sql(src: Path) -> Callable[..., str]:
    """``rfm_sql`` of another checkout's ``clvmodel/rfm.py`` (its imports resolve to this package)."""
    spec = importlib.util.spec_from_file_location("other_rfm", src / "clvmodel" / "rfm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.rfm_sql


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/benchdata/tx_10M.parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare-src", type=Path, help="another checkout's src folder (its rfm.py)")
    parser.add_argument("--memory-limit", help="also time the load and summary with this data.memory_limit (e.g. 700MB)")
    args = parser.parse_args(argv)
    steps: dict[str, Callable[[], Any]] = {
        "floor": lambda: floor(args.source),
        "rfm": lambda: summary(args.source, False),
        "split": lambda: summary(args.source, True),
    }
    if args.compare_src:
        other = other_rfm_sql(args.compare_src)
        steps["rfm_base"] = lambda: summary(args.source, False, other)
        steps["split_base"] = lambda: summary(args.source, True, other)
        for kind in ("rfm", "split"):
            pd.testing.assert_frame_equal(steps[kind](), steps[f"{kind}_base"](), check_exact=True)
        print("summaries equal to the base's (frames and dtypes)")
    if args.memory_limit:
        steps["rfm_limit"] = lambda: summary(args.source, False, memory_limit=args.memory_limit)
        steps["split_limit"] = lambda: summary(args.source, True, memory_limit=args.memory_limit)
        for kind in ("rfm", "split"):
            pd.testing.assert_frame_equal(steps[kind](), steps[f"{kind}_limit"](), check_exact=True)
        print(f"summaries with memory_limit {args.memory_limit} equal to the default's (frames and dtypes)")
    print(f"{os.uname().nodename}: {os.cpu_count()} cores; load {os.getloadavg()}", flush=True)
    best: dict[str, list[float]] = {}
    for round_ in range(args.repeat):
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"round {round_ + 1} {name:<11} wall {wall:6.2f} s  CPU {cpu:6.2f} s", flush=True)
            kept = best.setdefault(name, [float("inf"), float("inf")])
            kept[0], kept[1] = min(kept[0], wall), min(kept[1], cpu)
    print(f"best of {args.repeat}; load {os.getloadavg()}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<11} wall {wall:6.2f} s ({wall / best['floor'][0]:.2f}x floor)  "
              f"CPU {cpu:6.2f} s ({cpu / best['floor'][1]:.2f}x floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
