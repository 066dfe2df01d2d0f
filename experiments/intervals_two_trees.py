"""`clvmodel score` with 1,000 bootstrap draws, two source trees side by side (issue 16, target 3).

    python experiments/intervals_two_trees.py --before /work/main/src --after src \
        [--customers 1000000] [--families bgnbd pareto_nbd] [--repeats 2] [--out /tmp/intervals]

What is timed is what the benchmark's step "f. intervals" times (``experiments/benchmark.py``,
worker ``intervals_clvmodel``): the purchase family and Gamma-Gamma fitted, untimed, on the first
20,000 customers of ``/work/benchdata/summary_10M.parquet``, then one ``clvmodel.predict.score``
call (point forecast, CLV, segments and the intervals: 1,000 draws, 90 %, seed 0, 12 weeks at 1 %)
on its first ``--customers`` customers. Each run is a fresh interpreter with ``PYTHONPATH`` set to
one tree; the trees alternate, ``--repeats`` times each, and the best wall time of each is printed
with the CPU time of that run (``time.process_time``, the process's own: on a shared machine wall
time also counts the waiting), the load average, the process's peak RSS, and the largest relative difference between the
two trees' interval columns (NaN where both are NaN).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from clvmodel.artifact import TrainedModel
from clvmodel.config import SegmentConfig
from clvmodel.models import registry
from clvmodel.models.gamma_gamma import GammaGammaModel
from clvmodel.predict import score

family, customers, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
summary = pd.read_parquet("/work/benchdata/summary_10M.parquet").iloc[:customers].reset_index(drop=True)
summary = summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
fit_rows = summary.iloc[:20_000]
models = {family: registry.family_class(family)().fit(fit_rows), "gamma_gamma": GammaGammaModel().fit(fit_rows)}
trained = TrainedModel(
    name="benchmark", time_unit="week", models=models, primary=family,
    clv={"horizon": 12, "discount_rate": 0.01, "margin": 1.0},
    segments=SegmentConfig().model_dump(), columns={"customer_id": "customer_id", "date": "date", "amount": "amount"},
    config={"intervals": {"draws": 1000, "level": 0.9, "seed": 0}},
)
score(trained, summary.iloc[:1000])  # imports and first calls, untimed
wall, cpu = time.perf_counter(), time.process_time()
scores = score(trained, summary)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
columns = ["expected_purchases_lower", "expected_purchases_upper", "predicted_clv_lower", "predicted_clv_upper"]
np.save(out, scores[columns].to_numpy())
import resource
print(json.dumps({"wall": wall, "cpu": cpu, "load": open("/proc/loadavg").read().split()[0],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(tree: str, family: str, customers: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    done = subprocess.run([sys.executable, "-c", WORKER, family, str(customers), str(out)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the baseline's src directory")
    parser.add_argument("--after", required=True, help="the changed src directory")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--families", nargs="+", default=["bgnbd", "pareto_nbd"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="/tmp/intervals_two_trees")
    args = parser.parse_args()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for family in args.families:
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for i in range(args.repeats):
            for name, tree in (("before", args.before), ("after", args.after)):
                result = run(tree, family, args.customers, folder / f"{family}_{name}.npy")
                runs[name].append(result)
                print(f"  {family} {name} run {i + 1}: wall {result['wall']:.1f} s, cpu {result['cpu']:.1f} s, "
                      f"load {result['load']}, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
        a, b = (np.load(folder / f"{family}_{name}.npy") for name in ("before", "after"))
        same_nan = bool((np.isnan(a) == np.isnan(b)).all())
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = float(np.nanmax(np.abs(a - b) / np.abs(a))) if np.isfinite(a).any() else 0.0
        best = {name: min(r, key=lambda r: r["wall"]) for name, r in runs.items()}
        print(f"{family:<10} {args.customers:,} customers: before wall {best['before']['wall']:.1f} s "
              f"(cpu {best['before']['cpu']:.1f} s), after wall {best['after']['wall']:.1f} s "
              f"(cpu {best['after']['cpu']:.1f} s); cpu ratio {best['before']['cpu'] / best['after']['cpu']:.2f}x; "
              f"max relative difference {rel:.2g}, bitwise equal {bool(np.array_equal(a, b, equal_nan=True))}, "
              f"NaN alike {same_nan}", flush=True)


if __name__ == "__main__":
    main()
