"""1M simulated customers, one 4-level categorical covariate (3 dummies): time the fits side by side."""
import sys, time, warnings
import numpy as np, pandas as pd
from clvmodel.models import pareto_nbd_likelihood as pnl
from clvmodel.models.base import collapse
from clvmodel.models.pareto_nbd import ParetoNBDModel
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
order = sys.argv[2].split(",") if len(sys.argv) > 2 else ["nocov", "cov", "plain"]
rng = np.random.default_rng(7)
level = rng.integers(0, 4, n)
Z = np.eye(4)[level][:, 1:]
gt, gl = np.array([0.3, -0.2, 0.5]), np.array([-0.4, 0.2, 0.3])
alpha = 10.0 * np.exp(-Z @ gt); beta = 12.0 * np.exp(-Z @ gl)
T = rng.integers(52 * 7, 104 * 7 + 1, n) / 7.0          # acquired over a year, daily grid, in weeks
lam = rng.gamma(0.6, 1 / alpha); mu = rng.gamma(0.7, 1 / beta)
life = np.minimum(rng.exponential(1 / mu), T)
x = rng.poisson(lam * life).astype(float)
tx = np.where(x > 0, np.floor(life * rng.uniform(size=n) ** (1 / np.maximum(x, 1)) * 7) / 7, 0.0)
frame = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "c_1": Z[:, 0], "c_2": Z[:, 1], "c_3": Z[:, 2]})
design = ["c_1", "c_2", "c_3"]
print(f"{n:,} customers; repeat buyers {np.mean(x > 0):.2f}")
def timed(label, f):
    t, c = time.perf_counter(), time.process_time(); out = f(); dt, dc = time.perf_counter() - t, time.process_time() - c
    print(f"{label}: {dt:.1f} s wall, {dc:.1f} s CPU", {k: round(v, 4) for k, v in out.items()} if isinstance(out, dict) else "")
    return dt
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    def nocov():
            u, w, _ = collapse(frame, ["frequency", "recency", "T"])
            print("  distinct rows (x, t_x, T):", len(w))
            return pnl.fit_covariates({c: u[c].to_numpy() for c in u}, w, design_columns=[]).params
    runs = {"nocov": lambda: timed("numpy Pareto/NBD, no covariates (collapse + fit)", nocov)}
    def cov():
            cols = ["frequency", "recency", "T", *design]
            u, w, _ = collapse(frame, cols)
            print("  distinct rows (x, t_x, T, z):", len(w))
            return pnl.fit_covariates({c: u[c].to_numpy() for c in cols}, w, design_columns=design).params
    runs["cov"] = lambda: timed("numpy Pareto/NBD, 4-level covariate (collapse + fit)", cov)
    runs["plain"] = lambda: timed("ParetoNBDModel().fit (lifetimes' likelihood, central differences)", lambda: ParetoNBDModel().fit(frame).params_)
    for name in order:
        runs[name]()
