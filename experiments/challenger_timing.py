"""Where the challenger's time goes in a training run (issue 16, target 2), phase by phase.

    nice -n 5 python experiments/challenger_timing.py [--data PATH] [--calibration-end DATE]
                                                     [--time-unit week] [--repeat R]

Loads the log as ``clvmodel train`` does (:func:`clvmodel.io.load_transactions`, not timed as
the challenger's), then times, each as wall-clock and CPU seconds (``time.process_time``: all
threads of this process, so CPU > wall means DuckDB or OpenMP ran on both cores):

* ``first_days``: the customers' first purchase days (the derived inner cut);
* ``training_frame, 2 queries``: the training frame as it was built before (features at the inner
  cut and the targets, two queries each grouping the log by customer and day, joined in pandas);
* ``training_frame``: the same frame in one query (:func:`clvmodel.models.challenger.features_sql`
  with ``targets_end``);
* ``fit purchases`` / ``fit spend``: the two HistGradientBoostingRegressor fits;
* ``features at C``: the predict side's features at the calibration end;
* ``predict purchases`` / ``predict spend``: the regressors' predictions for every customer, on
  the matrix as the challenger builds it (``DataFrame.to_numpy``: column-major) and, ``C-order``,
  on a row-major copy;
* ``fit+predict (Challenger)``: the whole :meth:`Challenger.fit` + :meth:`Challenger.predict`, as
  ``clvmodel.train.fit_challenger`` runs them.

With ``--caps 100000,250000,500000 --seeds 0,1`` it measures instead what a training-size cap
(``Challenger(max_train_customers=...)``) costs in holdout accuracy and saves in fit time: the
training frame and the features at the calibration end are read once; then for the whole cohort
and each cap, for each seed (the sample's seed and the regressors' ``random_state``, which draws
the 200,000 rows the bin edges come from), both regressors are fitted on
:func:`clvmodel.models.challenger.training_sample`, every customer is predicted and
:func:`clvmodel.evaluate.leaderboard` scores the holdout (spearman, top20_share, pct_error, mae,
rmse for purchases and spend), with the fit's and the predict's wall and CPU seconds; two seeds of
one size show the metrics' noise. The whole cohort's rows (``all``) with two seeds are the
baseline: early stopping is off, so there the seed only moves the bin edges' subsample (cohorts
above 200,000), and a cap's spread is to be compared with that one, not with zero.

    nice -n 5 python experiments/challenger_timing.py --caps 100000,250000,500000 --seeds 0,1

On a loaded machine run it with ``OMP_NUM_THREADS=1``: the regressors' OpenMP threads otherwise
spin at their barriers while another process holds the core, and the CPU seconds measure the
load, not the work (the trees do not depend on the thread count: bit-identical with 1 and 2
threads on CDNOW, see :class:`clvmodel.models.challenger.Challenger`).

The phases call the same functions the challenger calls, in the same order (the per-phase numbers,
less the comparison rows, add up to about the whole). ``--repeat`` repeats everything and prints the best of R per phase.
Prints ``os.getloadavg()`` before and after: the machine is shared, say the load with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from typing import Any, Callable

import numpy as np

from clvmodel import io, rfm
from clvmodel.config import DataConfig
from clvmodel.models import challenger as ch
from clvmodel.models.base import ModelData


def timed(label: str, call: Callable[[], Any], table: dict[str, list[tuple[float, float]]]) -> Any:
    """Run ``call``, record (wall, cpu) seconds under ``label``, return its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = call()
    table.setdefault(label, []).append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def one_pass(con: Any, calibration_end: dt.date, time_unit: str, holdout: float,
             table: dict[str, list[tuple[float, float]]]) -> None:
    """Every phase once, as :meth:`Challenger.fit` and :meth:`Challenger.predict` run them."""
    model = ch.Challenger()
    reader = ch.DuckDBReader(con)
    unit_days = rfm.UNIT_DAYS[time_unit]
    firsts = timed("first_days", lambda: reader.first_days(calibration_end), table)
    inner_cut, _ = ch.inner_cut_from_firsts(firsts, calibration_end=calibration_end,
                                            holdout_days=round(holdout * unit_days),
                                            min_customers=model.min_customers, time_unit=time_unit)
    # Before: two queries (features at the inner cut; targets), each grouping the log by day.
    before = timed("training_frame, 2 queries", lambda: ch.join_training(
        ch.features(con, cut=inner_cut, time_unit=time_unit),
        ch.targets(con, start=inner_cut, end=calibration_end)), table)
    train = timed("training_frame", lambda: reader.training_frame(
        inner_cut=inner_cut, calibration_end=calibration_end, time_unit=time_unit), table)
    assert before["customer_id"].equals(train["customer_id"])
    x = ch._matrix(train)  # noqa: SLF001 - the matrix the fit uses
    regressors = {}
    for target in ch.TARGETS:
        y = train[target].to_numpy(dtype=np.float64)
        regressors[target] = timed(f"fit {target}", lambda: model._regressor().fit(x, y), table)  # noqa: SLF001
    frame = timed("features at C", lambda: reader.features(cut=calibration_end, time_unit=time_unit), table)
    xc = ch._matrix(frame)  # noqa: SLF001
    xc_c = np.ascontiguousarray(xc)  # row-major: one customer's 13 features side by side
    for target, regressor in regressors.items():
        timed(f"predict {target}", lambda: regressor.predict(xc), table)
        timed(f"predict {target} C-order", lambda: regressor.predict(xc_c), table)

    def whole() -> Any:
        data = ModelData(transactions=con, calibration_end=calibration_end, holdout_periods=holdout,
                         time_unit=time_unit)
        fitted = ch.Challenger().fit(data)
        return fitted.predict(con, cut=calibration_end, horizon_periods=holdout)

    timed("fit+predict (Challenger)", whole, table)
    print(f"  training cohort {len(train):,}, scored {len(frame):,}, inner cut {inner_cut}", flush=True)


def caps(con: Any, calibration_end: dt.date, time_unit: str, holdout: float, summary: Any,
         sizes: list[int | None], seeds: list[int]) -> None:
    """Holdout metrics and fit time of the challenger trained on the whole cohort and on samples."""
    from clvmodel import evaluate

    reader = ch.DuckDBReader(con)
    base = ch.Challenger()
    inner_cut, _ = ch.inner_cut_from_firsts(reader.first_days(calibration_end), calibration_end=calibration_end,
                                            holdout_days=round(holdout * rfm.UNIT_DAYS[time_unit]),
                                            min_customers=base.min_customers, time_unit=time_unit)
    cohort = reader.training_frame(inner_cut=inner_cut, calibration_end=calibration_end, time_unit=time_unit)
    scored = reader.features(cut=calibration_end, time_unit=time_unit)
    xc = ch._matrix(scored)  # noqa: SLF001 - the matrix predict uses
    window = (calibration_end - inner_cut).days / rfm.UNIT_DAYS[time_unit]
    factor = 1.0 if abs(window - holdout) < 1e-9 else holdout / window
    print(f"cohort {len(cohort):,} (inner cut {inner_cut}), scored {len(scored):,}, horizon factor {factor:g}")
    keys = [(t, m) for t in ("purchases", "spend") for m in ("spearman", "top20_share", "pct_error", "mae", "rmse")]
    print(f"{'cap':>8} {'seed':>4} {'n_fit':>9} {'fit wall':>8} {'fit cpu':>8} {'pred wall':>9} {'pred cpu':>8} "
          + " ".join(f"{t[:5] + '.' + m[:8]:>15}" for t, m in keys), flush=True)
    for size in sizes:
        for seed in seeds:
            train = ch.training_sample(cohort, size, seed)
            model = ch.Challenger(random_state=seed)
            x = ch._matrix(train)  # noqa: SLF001
            wall, cpu = time.perf_counter(), time.process_time()
            regressors = {t: model._regressor().fit(x, train[t].to_numpy(dtype=np.float64))  # noqa: SLF001
                          for t in ch.TARGETS}
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            frame = scored[["customer_id"]].copy()
            pwall, pcpu = time.perf_counter(), time.process_time()
            for target, regressor in regressors.items():
                frame[target] = regressor.predict(xc) * factor
            pwall, pcpu = time.perf_counter() - pwall, time.process_time() - pcpu
            aligned = summary[["customer_id"]].merge(frame, on="customer_id", how="left", validate="1:1")
            board = evaluate.leaderboard(summary, {"challenger": aligned}).set_index("target")
            values = " ".join(f"{board.loc[t, m]:15.5f}" for t, m in keys)
            print(f"{size or 'all':>8} {seed:>4} {len(train):>9,} {wall:8.1f} {cpu:8.1f} {pwall:9.1f} {pcpu:8.1f} "
                  f"{values}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/benchdata/tx_10M.parquet")
    parser.add_argument("--calibration-end", default="2025-06-30", type=dt.date.fromisoformat)
    parser.add_argument("--time-unit", default="week")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--caps", default=None, help="comma-separated training-size caps (the whole cohort is added)")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    con = io.connect()
    clock = time.perf_counter()
    io.load_transactions(con, DataConfig(source=args.data))
    summary = rfm.summarise(con, time_unit=args.time_unit, calibration_end=args.calibration_end, days="days").summary
    holdout = float(summary["duration_holdout"].iloc[0])
    print(f"loaded {args.data} and summarised in {time.perf_counter() - clock:.1f} s; holdout {holdout:g} "
          f"{args.time_unit}s; {len(summary):,} customers", flush=True)
    if args.caps:
        sizes = [None, *sorted((int(c) for c in args.caps.split(",")), reverse=True)]
        caps(con, args.calibration_end, args.time_unit, holdout, summary, sizes,
             [int(s) for s in args.seeds.split(",")])
        print(f"load after: {os.getloadavg()}")
        return
    table: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        one_pass(con, args.calibration_end, args.time_unit, holdout, table)
    print(f"{'phase':<26} {'wall s':>8} {'cpu s':>8}   (best of {args.repeat} by wall)")
    total = [0.0, 0.0]
    for label, runs in table.items():
        wall, cpu = min(runs)
        if not label.startswith("fit+predict") and not label.endswith(("2 queries", "C-order")):
            total[0] += wall
            total[1] += cpu
        print(f"{label:<26} {wall:8.2f} {cpu:8.2f}")
    print(f"{'sum of the phases':<26} {total[0]:8.2f} {total[1]:8.2f}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
