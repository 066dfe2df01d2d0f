"""Time clvmodel.predict.score against lifetimes' customer_lifetime_value on the same rows (issue 7 d).

    python experiments/score_timing.py [--summary PATH] [--params PATH] [--customers N] [--repeat R]

Both sides get the same BG/NBD + Gamma-Gamma parameters and the same RFM rows (weeks). lifetimes'
``GammaGammaFitter.customer_lifetime_value(time=12, freq="M", discount_rate=0.01)`` is the 12-week
horizon at 1 % a week, as ``score_lifetimes`` in ``experiments/benchmark.py`` calls it; clvmodel's
side is ``score(trained, summary, interval_draws=0)`` with the model built as ``score_clvmodel``
builds it (P(alive), E[purchases], E[order value], CLV and segments). lifetimes is imported before
any clock starts (its import takes ~1.5 s and is not scoring work). Prints lifetimes' time,
clvmodel's first and best of ``R`` calls, the ratios, the max relative difference of predicted CLV
and our peak RSS.

Parameters are read from ``--params`` (JSON ``{"bgnbd": {...}, "gamma_gamma": {...}}``); when the
file does not exist they are fitted on the rows once (~5 s at 1 M) and written there for reuse.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

# The benchmark's definitions (this script's folder is on sys.path when it runs).
from benchmark import DISCOUNT_RATE, HORIZON, LIFETIMES_CLV_FREQ, lifetimes_fitters, trained_model


def _timed(call: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    """The last result, the first wall-clock time and the fastest of ``repeat``.

    The first is what the benchmark sees (one call in a fresh process: cold allocator, first use
    of lazily imported code); the best shows the steady state.
    """
    times, value = [], None
    for _ in range(repeat):
        clock = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - clock)
    return value, times[0], min(times)


def _memory_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of this process in MB; NaN without /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _parameters(path: Path, summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Saved parameters, or fit them once on ``summary`` and save them."""
    if path.exists():
        return json.loads(path.read_text())
    from clvmodel.models.bgnbd import BetaGeoModel
    from clvmodel.models.gamma_gamma import GammaGammaModel

    params = {"bgnbd": BetaGeoModel().fit(summary).params_, "gamma_gamma": GammaGammaModel().fit(summary).params_}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params, indent=1))
    return params


def _lifetimes_clv(params: dict[str, dict[str, float]], summary: pd.DataFrame) -> Callable[[], np.ndarray]:
    """lifetimes' CLV call as ``score_lifetimes`` makes it, ready to time."""
    bgf, ggf = lifetimes_fitters(params)
    f, r, T, m = (summary[c] for c in ("frequency", "recency", "T", "monetary_value"))

    def run() -> np.ndarray:
        return np.asarray(
            ggf.customer_lifetime_value(bgf, f, r, T, m, time=HORIZON, discount_rate=DISCOUNT_RATE,
                                        freq=LIFETIMES_CLV_FREQ),
            dtype=float,
        )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", default="/tmp/bench/work/10M.rfm_clvmodel.parquet")
    parser.add_argument("--params", default="/tmp/s7score/params.json")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of clvmodel's side (lifetimes runs once)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import lifetimes  # noqa: F401  (before any clock: a slow import with side effects)

    from clvmodel.predict import score

    columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    summary = pd.read_parquet(args.summary).iloc[: args.customers].reset_index(drop=True)[columns]
    params = _parameters(Path(args.params), summary)
    trained = trained_model(params)

    rss, peak_before = _memory_mb("VmRSS"), _memory_mb("VmHWM")
    ours, ours_first, ours_best = _timed(lambda: score(trained, summary, interval_draws=0), args.repeat)
    peak = _memory_mb("VmHWM")  # lifetimes has not run yet: this peak is ours (or the loading's, if higher)
    theirs, theirs_seconds, _ = _timed(_lifetimes_clv(params, summary), 1)

    predicted = ours["predicted_clv"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.abs(predicted - theirs) / np.abs(theirs)
    print(f"customers            {len(summary):,}")
    print(f"lifetimes CLV        {theirs_seconds:.3f} s")
    print(f"clvmodel score       {ours_first:.3f} s first call, {ours_best:.3f} s best of {args.repeat}")
    print(f"ratio                {theirs_seconds / ours_first:.1f}x first call, {theirs_seconds / ours_best:.1f}x best")
    print(f"max rel. diff CLV    {np.nanmax(relative):.3e}  (NaN on either side: "
          f"{int(np.isnan(predicted).sum())} / {int(np.isnan(theirs).sum())})")
    print(f"memory               RSS {rss:,.0f} MB before scoring (peak {peak_before:,.0f} MB), "
          f"peak {peak:,.0f} MB after clvmodel")
    print(f"segments             {ours['segment'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
