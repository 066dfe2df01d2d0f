"""Time per-customer intervals: 1,000 bootstrap draws for 100,000 customers (issue 6's target).

    python experiments/intervals_timing.py [MODEL_DIR]    # a model trained from configs/cdnow.yaml

Synthetic customers with daily first purchases (weeks as the unit), scored with BG/NBD and with
Pareto/NBD behind predicted_clv; prints the point-forecast time and the time with 1,000 draws.
"""

import dataclasses
import sys
import time

import numpy as np
import pandas as pd

import clvmodel
from clvmodel.predict import score

model = clvmodel.load_model(sys.argv[1] if len(sys.argv) > 1 else "models/cdnow")
rng = np.random.default_rng(0)
n = 100_000
T = rng.integers(1, 79 * 7, n) / 7  # daily first purchases, weeks as the unit
recency = np.floor(T * 7 * rng.uniform(0, 1, n)) / 7
frequency = rng.poisson(2, n) * (recency > 0)
rows = pd.DataFrame({"customer_id": np.arange(n).astype(str), "frequency": frequency, "recency": recency, "T": T,
                     "monetary_value": rng.gamma(5, 7, n) * (frequency > 0)})
for primary in ("bgnbd", "pareto_nbd"):
    m = dataclasses.replace(model, primary=primary)
    t = time.perf_counter(); score(m, rows, interval_draws=0); point = time.perf_counter() - t
    t = time.perf_counter(); out = score(m, rows, interval_draws=1000); full = time.perf_counter() - t
    print(f"{primary}: {n:,} customers, point {point:.1f} s, with 1,000 draws {full:.1f} s; "
          f"distinct (x, t_x, T) {len(rows[['frequency','recency','T']].drop_duplicates()):,}, "
          f"(x, T) {len(rows[['frequency','T']].drop_duplicates()):,}")
