"""Bootstrap intervals, the draw-by-draw path against the many-draw one, side by side (issue 16, target 3).

    python experiments/intervals_old_vs_new.py --summary RFM.parquet --models MODELS.json \
        [--customers 100000 1000000] [--repeats 3] [--old-max-customers 100000]

``RFM.parquet`` is an RFM summary (``customer_id, frequency, recency, T, monetary_value``, weeks),
e.g. the benchmark's (``experiments/benchmark.py --workdir``); ``MODELS.json`` maps ``bgnbd``,
``pareto_nbd`` and ``gamma_gamma`` to saved model states (``FittedModel.to_dict()``, with their
covariance). For each family and size the two implementations run alternately, ``--repeats``
times each, in this one process, and the best time of each is printed with the largest relative
difference between their outputs (both on the same draws: same seed). The draw-by-draw path is
only run up to ``--old-max-customers`` (at 1 M customers it takes many minutes); above, its time
is not measured.

Timed: :func:`clvmodel.uncertainty.interval_columns` (new) and
:func:`clvmodel.uncertainty.interval_columns_by_draw` (old) with 1,000 draws, a 12-week horizon at
1 % a week, after the point forecast (:func:`clvmodel.clv.forecast`, untimed, the same for both).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from clvmodel import clv, uncertainty
from clvmodel.artifact import TrainedModel
from clvmodel.config import SegmentConfig
from clvmodel.models import registry

TARGETS = {"bgnbd": 30.0, "pareto_nbd": 60.0}  # seconds at 1 M customers (issue 16)


def trained_model(family: str, states: dict) -> TrainedModel:
    models = {name: registry.family_class(name).from_dict(states[name]) for name in (family, "gamma_gamma")}
    return TrainedModel(name="intervals", time_unit="week", models=models, primary=family,
                        clv={"horizon": 12, "discount_rate": 0.01, "margin": 1.0},
                        segments=SegmentConfig().model_dump(), columns={}, config={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--families", nargs="+", default=["bgnbd", "pareto_nbd"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-max-customers", type=int, default=100_000)
    parser.add_argument("--old-repeats", type=int, default=None, help="repeats of the old path (default: --repeats)")
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    states = json.loads(open(args.models).read())
    summary = pd.read_parquet(args.summary)
    for family in args.families:
        trained = trained_model(family, states)
        for n in args.customers:
            rows = summary.iloc[:n][["customer_id", "frequency", "recency", "T", "monetary_value"]].reset_index(drop=True)
            point = clv.forecast(trained.purchase_model, trained.spend_model, rows, horizon=12, discount_rate=0.01, margin=1.0)
            kw = dict(horizon=12, margin=1.0, level=0.9, draws=args.draws, seed=0)
            run_old = n <= args.old_max_customers
            old_repeats = args.repeats if args.old_repeats is None else args.old_repeats
            times: dict[str, list[float]] = {"new": [], "old": []}
            outputs = {}
            for i in range(args.repeats):
                for name, call in (("new", uncertainty.interval_columns), ("old", uncertainty.interval_columns_by_draw)):
                    if name == "old" and (not run_old or i >= old_repeats):
                        continue
                    clock = time.perf_counter()
                    outputs[name] = call(trained, rows, point, **kw)
                    times[name].append(time.perf_counter() - clock)
                    print(f"  {family} {n:,} {name} run {i + 1}: {times[name][-1]:.1f} s", flush=True)
            new = min(times["new"])
            line = f"{family:<10} {n:>9,} customers: new {new:7.1f} s"
            if times["old"]:
                old = min(times["old"])
                a, b = outputs["old"].to_numpy(), outputs["new"].to_numpy()
                same_nan = bool((np.isnan(a) == np.isnan(b)).all())
                rel = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))
                line += f", old {old:7.1f} s, {old / new:5.1f}x faster; max relative difference {rel:.2g} (NaN alike: {same_nan})"
            if n >= 1_000_000:
                line += f"; target <= {TARGETS.get(family, float('nan')):.0f} s: {'met' if new <= TARGETS.get(family, 0) else 'NOT met'}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
