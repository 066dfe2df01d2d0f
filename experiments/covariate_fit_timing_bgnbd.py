"""BG/NBD fit time at 1M simulated customers: no covariates vs one 4-level categorical (3 dummies), side by side.

Customers of 4 channels (250k each), acquired uniformly over 2 years (T in whole days, up to 730),
BG/NBD per channel from CLVTools' links with base r 0.6, alpha 12, a 0.8, b 4 (per week),
gamma_trans = (0.3, -0.2, 0.6), gamma_life = (0.5, -0.4, 0.2) for the dummies of channels 1..3.
Recency rounded down to whole days, everything in weeks. Each model is fitted on its own collapsed
rows (the collapse timed separately); both fits in this one process, alternately, best of REPEATS.
"""
import sys, time, warnings
import numpy as np, pandas as pd
from clvmodel.models import bgnbd_likelihood as bl
from clvmodel.models.base import collapse
from clvmodel.models.bgnbd_simulate import simulate_summary

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
rng = np.random.default_rng(14)
base = dict(r=0.6, alpha=12.0, a=0.8, b=4.0)
gt, gl = np.array([0.0, 0.3, -0.2, 0.6]), np.array([0.0, 0.5, -0.4, 0.2])
frames = []
for level in range(4):
    p = dict(r=base["r"], alpha=base["alpha"] * np.exp(-gt[level]), a=base["a"] * np.exp(gl[level]), b=base["b"] * np.exp(gl[level]))
    T_days = rng.integers(1, 731, N // 4).astype(float)
    f = simulate_summary(rng, p, T_days, unit=7.0)
    f["recency"] = np.minimum(np.floor(f["recency"]), f["T"]) / 7.0
    f["T"] = f["T"] / 7.0
    for j in (1, 2, 3):
        f[f"channel_{j}"] = float(level == j)
    frames.append(f)
summary = pd.concat(frames, ignore_index=True)
design = ["channel_1", "channel_2", "channel_3"]
t0 = time.perf_counter(); plain_rows, plain_w, _ = collapse(summary, ["frequency", "recency", "T"]); t_cp = time.perf_counter() - t0
t0 = time.perf_counter(); cov_rows, cov_w, _ = collapse(summary, ["frequency", "recency", "T", *design]); t_cc = time.perf_counter() - t0
print(f"{len(summary):,} customers; distinct rows: {len(plain_rows):,} (x, t_x, T), {len(cov_rows):,} with the channel; "
      f"collapse {t_cp:.2f} s / {t_cc:.2f} s")
plain_cols = {c: plain_rows[c].to_numpy() for c in plain_rows}
cov_cols = {c: cov_rows[c].to_numpy() for c in cov_rows}
tp, tc = [], []
for _ in range(REPEATS):
    t0 = time.perf_counter(); plain = bl.fit(plain_cols, plain_w); tp.append(time.perf_counter() - t0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter(); cov = bl.fit_covariates(cov_cols, cov_w, design_columns=design); tc.append(time.perf_counter() - t0)
print("plain   fit s:", " ".join(f"{t:.2f}" for t in tp), f" best {min(tp):.2f}", plain.status, round(plain.log_likelihood, 3))
print("cov     fit s:", " ".join(f"{t:.2f}" for t in tc), f" best {min(tc):.2f}", cov.status, round(cov.log_likelihood, 3),
      "warnings:", [str(w.message)[:80] for w in caught])
print(f"ratio cov/plain: best-of-{REPEATS} {min(tc) / min(tp):.2f}, median {np.median(tc) / np.median(tp):.2f}, "
      f"per pair {' '.join(f'{c / p:.2f}' for c, p in zip(tc, tp))}")
truth = {**base, **{f"life.{c}": v for c, v in zip(design, gl[1:])}, **{f"trans.{c}": v for c, v in zip(design, gt[1:])}}
for name, value in cov.params.items():
    print(f"  {name:<18} {value:10.4f}  se {cov.standard_errors[name]:.4f}  true {truth[name]:8.4f}  z {(value - truth[name]) / cov.standard_errors[name]:+.2f}")
print("plain", {k: round(v, 4) for k, v in plain.params.items()})
