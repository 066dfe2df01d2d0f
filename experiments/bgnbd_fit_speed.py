"""BG/NBD fit speed at a million customers: clvmodel against lifetimes' ``BetaGeoFitter.fit`` (issue 7, 16).

What it measures, in one process, alternating the two fits and keeping the best of ``--repeat`` runs
(wall seconds by ``time.perf_counter`` and CPU seconds by ``time.process_time``):

* clvmodel: ``BetaGeoModel().fit(summary)`` as ``make bench`` step c times it (identical rows
  collapsed into weights, the fit of :func:`clvmodel.models.bgnbd_likelihood.fit`, standard errors);
* lifetimes: ``BetaGeoFitter().fit(frequency, recency, T)`` on every customer row, unweighted, as
  step c's baseline.

For clvmodel it also counts the BFGS starts run, the likelihood evaluations (BFGS trial points and
the central-difference Hessian's gradient calls together) and the milliseconds per evaluation (best
of 10 direct calls at the optimum), and it prints the two fits' largest relative parameter
difference (step c requires 1e-6).

The summary is the first ``--customers`` rows of ``/work/benchdata/summary_10M.parquet`` (the RFM
summary in weeks of the benchmark's 10 M transactions, seed 2024), as step c takes the first 1 M
customers of that size. Run from the repository root, on a quiet machine or under ``nice`` with the
load noted (``uptime``)::

    PYTHONPATH=src python experiments/bgnbd_fit_speed.py [--customers 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

SUMMARY = "/work/benchdata/summary_10M.parquet"


def _timed(call: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", default=SUMMARY)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import lifetimes  # imported before any clock, as make bench does

    from clvmodel.models import bgnbd_likelihood, mle
    from clvmodel.models.base import collapse
    from clvmodel.models.bgnbd import BetaGeoModel

    summary = pd.read_parquet(args.summary).iloc[: args.customers].reset_index(drop=True)
    rfm = [summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")]

    # Count starts and evaluations without changing the fit: wrap mle.search and the likelihood's call.
    counts = {"starts": 0, "evaluations": 0}
    search, call = mle.search, bgnbd_likelihood.BetaGeoLikelihood.__call__

    def counted_search(*a: Any, **k: Any) -> Any:
        stops = search(*a, **k)
        counts["starts"] += len(stops)
        return stops

    def counted_call(self: Any, theta: Any) -> Any:
        counts["evaluations"] += 1
        return call(self, theta)

    mle.search = counted_search
    bgnbd_likelihood.BetaGeoLikelihood.__call__ = counted_call  # type: ignore[method-assign]

    best = {"clvmodel": [np.inf, np.inf], "lifetimes": [np.inf, np.inf]}
    ours = theirs = None
    per_fit: dict[str, int] = {}
    for _ in range(args.repeat):
        counts.update(starts=0, evaluations=0)
        ours, wall, cpu = _timed(lambda: BetaGeoModel().fit(summary))
        per_fit = dict(counts)
        best["clvmodel"] = [min(best["clvmodel"][0], wall), min(best["clvmodel"][1], cpu)]
        with warnings.catch_warnings():  # lifetimes' fit resets the warning filters
            theirs, wall, cpu = _timed(lambda: lifetimes.BetaGeoFitter().fit(*rfm))
        best["lifetimes"] = [min(best["lifetimes"][0], wall), min(best["lifetimes"][1], cpu)]
    bgnbd_likelihood.BetaGeoLikelihood.__call__ = call  # type: ignore[method-assign]
    mle.search = search

    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    x, tx, T = (unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    scale = bgnbd_likelihood.time_scale(T)
    objective = bgnbd_likelihood.BetaGeoLikelihood(x, tx * scale, T * scale, weights)
    at = np.log([ours.params_[k] for k in ("r", "alpha", "a", "b")]) + np.array([0.0, np.log(scale), 0.0, 0.0])
    objective(at)
    per_call = min(_timed(lambda: objective(at))[2] for _ in range(10))
    per_call_wall = min(_timed(lambda: objective(at))[1] for _ in range(10))
    difference = max(abs(ours.params_[k] / float(theirs.params_[k]) - 1) for k in ("r", "alpha", "a", "b"))

    print(f"BG/NBD fit on {len(summary):,} customers ({len(unique):,} distinct rows), best of {args.repeat}, "
          f"load {os.getloadavg()[0]:.2f}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<10} {wall:7.2f} s wall  {cpu:7.2f} s CPU")
    print(f"  ratio      {best['lifetimes'][0] / best['clvmodel'][0]:7.1f}x wall  "
          f"{best['lifetimes'][1] / best['clvmodel'][1]:7.1f}x CPU (issue 7 target: >= 4x)")
    print(f"  clvmodel: {per_fit['starts']} start(s), {per_fit['evaluations']} evaluations (BFGS and Hessian), "
          f"{per_call * 1e3:.1f} ms CPU ({per_call_wall * 1e3:.1f} ms wall) per evaluation")
    print(f"  parameters: clvmodel {ours.params_}, largest relative difference to lifetimes {difference:.1e}")


if __name__ == "__main__":
    main()
