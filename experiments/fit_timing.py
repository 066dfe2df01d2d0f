"""Time the BG/NBD and Gamma-Gamma fits against plain lifetimes at a million customers (issue 7c).

    python experiments/fit_timing.py [SUMMARY.parquet] [ROWS]

SUMMARY is an RFM summary (customer_id, frequency, recency, T, monetary_value; default: the 10M
benchmark's, first ROWS = 1,000,000 rows). In one process, lifetimes imported before any clock:

* BG/NBD: ``lifetimes.BetaGeoFitter().fit(frequency, recency, T)`` on all rows against
  ``BetaGeoModel().fit(summary)`` (collapse + numpy likelihood, analytic gradient, central-difference
  Hessian);
* Gamma-Gamma: ``lifetimes.GammaGammaFitter().fit(frequency, monetary_value)`` on the repeat
  customers with positive spend against ``GammaGammaModel().fit(summary)`` (the same selection
  inside, the frequency-spend correlation, collapse + numpy likelihood, analytic gradient,
  central-difference Hessian).

Prints seconds, the speed-up and the largest relative difference of parameters and standard errors.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

with warnings.catch_warnings():
    import lifetimes

from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.gamma_gamma import GammaGammaModel

DEFAULT = "/tmp/bench/work/10M.rfm_clvmodel.parquet"


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def largest_relative_difference(ours: dict[str, float], theirs: pd.Series) -> float:
    return max(abs(ours[k] - float(theirs[k])) / abs(float(theirs[k])) for k in ours)


def report(name: str, theirs: Any, t_theirs: float, ours: Any, t_ours: float) -> None:
    print(
        f"{name:<12} lifetimes {t_theirs:6.2f} s   clvmodel {t_ours:6.2f} s   speed-up {t_theirs / t_ours:5.1f}x   "
        f"max rel. diff params {largest_relative_difference(ours.params_, theirs.params_):.1e}, "
        f"standard errors {largest_relative_difference(ours.standard_errors_, theirs.standard_errors_):.1e}"
    )


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    summary = pd.read_parquet(path).iloc[:rows].reset_index(drop=True)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    print(f"{len(summary):,} customers ({len(repeat):,} repeat buyers with spend) from {path}")
    distinct = len(summary[["frequency", "recency", "T"]].drop_duplicates())
    print(f"distinct (x, t_x, T) rows: {distinct:,}; distinct (x, m) of repeat buyers: "
          f"{len(repeat[['frequency', 'monetary_value']].drop_duplicates()):,}")
    with warnings.catch_warnings():  # lifetimes' fits reset the warning filters
        theirs, t_theirs = timed(lambda: lifetimes.BetaGeoFitter().fit(*(summary[c] for c in ("frequency", "recency", "T"))))
    ours, t_ours = timed(lambda: BetaGeoModel().fit(summary))
    report("BG/NBD", theirs, t_theirs, ours, t_ours)
    with warnings.catch_warnings():
        theirs, t_theirs = timed(lambda: lifetimes.GammaGammaFitter().fit(*(repeat[c] for c in ("frequency", "monetary_value"))))
    ours, t_ours = timed(lambda: GammaGammaModel().fit(summary))
    report("Gamma-Gamma", theirs, t_theirs, ours, t_ours)


if __name__ == "__main__":
    main()
