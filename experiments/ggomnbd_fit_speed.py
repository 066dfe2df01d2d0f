"""GGom/NBD fit speed: the death integral from tails (per distinct (x, u) pair) against row by row.

What it measures, on the first N rows of a summary Parquet (``frequency, recency, T``; default the
first 1,000,000 rows of /work/benchdata/summary_10M.parquet), collapsed to distinct rows as the
model's fit does, in the fit's rescaled time:

1. the objective at several parameter points both ways (total log-likelihood, relative difference;
   largest gradient difference);
2. one value-and-gradient evaluation both ways, alternating, best of ``--reps`` (wall and CPU);
3. with ``--fit``: the whole :func:`clvmodel.models.ggomnbd_likelihood.fit` with the tails and,
   with ``--fit-rows`` too, row by row (evaluations counted; wall and CPU; the fitted parameters);
4. with ``--compare-fit N`` (alone: steps 1-3 skipped): the whole fit now against the fit as it was
   before issue 16's target 2 changes, alternating, best of N (wall and CPU, evaluations counted by
   kind, the results' differences). "Before" is the same code with the Pareto/NBD limit fitted
   and its Hessian taken through the GGom/NBD objective at b = RIDGE_B (:class:`GGomLimit`
   in place of ``ParetoNBDLikelihood``); every free start runs in both (skipping the later
   starts on the ridge was tried and undone after review);
   it spends one GGom/NBD value evaluation more than the old code (the limit's LL, which the old
   code took from the limit fit's last value);
5. with ``--evaluations N`` (alone): one evaluation of each kind the fit makes, alternating, best
   of N: GGom/NBD value-and-gradient with its per-row terms pooled (now) and per row
   (:class:`PerRowTails`, before), GGom/NBD value, Pareto/NBD value-and-gradient;
6. with ``--threads N`` (alone): the whole fit on one thread (``workers=1``) against two
   (``workers=2``, :data:`~clvmodel.models.ggomnbd_likelihood.WORKERS`: the free starts, the limit's
   LL and the Hessian's gradient calls side by side), alternating, best of N: wall and CPU, the
   evaluations counted by kind, whether the two results are identical bit for bit, ``uptime``
   before and after. First, how much of one evaluation runs without the GIL: one GGom/NBD
   value-and-gradient alone against two identical ones started together on two threads (best of
   N, at least 3, each). If a share f of an evaluation holds the GIL, the two together take about
   (1 + f) times one alone on two idle cores, so f ≈ ratio − 1 (an upper bound on a loaded machine).

"Row by row" is the code before the tails: :func:`.ggomnbd_likelihood.death_integral` on each
row's ``[t_x, T]`` (a subclass of the objective that skips the tails). Run::

    PYTHONPATH=src nice -n 5 .venv/bin/python experiments/ggomnbd_fit_speed.py [--rows N] [--reps 3] [--fit] [--fit-rows]
    PYTHONPATH=src nice -n 5 .venv/bin/python experiments/ggomnbd_fit_speed.py --compare-fit 2
    PYTHONPATH=src nice -n 5 .venv/bin/python experiments/ggomnbd_fit_speed.py --evaluations 5
    PYTHONPATH=src nice -n 5 .venv/bin/python experiments/ggomnbd_fit_speed.py --threads 2

Speed is only measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from scipy.special import expit

from clvmodel.models import ggomnbd_likelihood as gl
from clvmodel.models.base import collapse

DEFAULT_SOURCE = "/work/benchdata/summary_10M.parquet"


#: Parameter points ln(r, α, b, s, β) in rescaled time: the Pareto/NBD limit, the fit's starts, strong aging, small s.
POINTS = {
    "limit b=1e-9": [0.55, 0.27, 1e-9, 0.6, 0.3e-9],
    "limit start": [1.0, 1.0, 1e-9, 1.0, 1e-9],
    "b=0.1": [0.8, 0.2, 0.1, 1.5, 0.1],
    "b=1": [0.8, 0.2, 1.0, 1.5, 2.0],
    "b=8": [2.0, 1.0, 8.0, 0.3, 0.05],
    "s=0.05": [0.5, 0.3, 3.0, 0.05, 0.01],
}


def _timed(function: Any, *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _fit(cls: type, columns: dict[str, np.ndarray], weights: np.ndarray) -> None:
    """The whole fit with ``cls`` as its objective, evaluations counted."""
    count = {"value-and-gradient": 0, "value": 0}

    class Counted(cls):  # type: ignore[valid-type, misc]
        def __call__(self, phi: np.ndarray) -> Any:
            count["value-and-gradient"] += 1
            return super().__call__(phi)

        def log_likelihood(self, phi: np.ndarray) -> float:
            count["value"] += 1
            return super().log_likelihood(phi)

    saved = gl.GompertzNBDLikelihood
    gl.GompertzNBDLikelihood = Counted  # the fit builds its objective by this name
    try:
        result, wall, cpu = _timed(gl.fit, columns, weights)
    finally:
        gl.GompertzNBDLikelihood = saved
    print(f"fit {cls.__name__}: wall {wall:.1f} s, CPU {cpu:.1f} s, evaluations {count}")
    print(f"  status {result.status}, LL {result.log_likelihood:.10f}, params {result.params}, limit {result.limit}")


class PerRowTails(gl.GompertzNBDLikelihood):
    """The objective before its per-row terms were pooled: tails per pair, every term per row."""

    def log_likelihood(self, phi: np.ndarray) -> float:
        params, total = gl.params_from_phi(phi), 0.0
        tails = self._tails(params, False)
        for block in self._blocks(len(self.x)):
            t = self._terms(params, tails, block, False)
            total += gl._dot(self.weights[block], t["common"] + np.logaddexp(t["alive"], t["dead"]))
        return total

    def __call__(self, phi: np.ndarray) -> Any:
        params = gl.params_from_phi(phi)
        value, d_params = 0.0, np.zeros(5)
        tails = self._tails(params, True)
        for block in self._blocks(len(self.x)):
            t = self._terms(params, tails, block, True)
            w = self.weights[block]
            value += gl._dot(w, t["common"] + np.logaddexp(t["alive"], t["dead"]))
            dead_share = expit(t["dead"] - t["alive"])
            per_row = t["d_common"] + t["d_alive"] + dead_share[:, None] * (t["d_dead"] - t["d_alive"])
            d_params += np.einsum("i,ij->j", w, per_row)
        d_phi = gl._FROM_PHI.T @ (d_params * np.array(params))
        return -value / self.total_weight, -d_phi / self.total_weight


class RowByRow(PerRowTails):
    """The objective as before the tails: the death integral on each row's [t_x, T]."""

    def _tails(self, params: Any, gradient: bool) -> Any:
        return None

    def _terms(self, params: Any, tails: Any, block: slice, gradient: bool) -> dict[str, np.ndarray]:
        return gl.log_likelihood_terms(params, self.x[block], self.tx[block], self.T[block], gradient=gradient)


def _evaluations(columns: dict[str, np.ndarray], weights: np.ndarray, reps: int) -> None:
    """One evaluation of each kind the fit makes, alternating, best of ``reps`` (wall and CPU)."""
    x, tx, T = (columns[c] for c in ("frequency", "recency", "T"))
    scale = gl.time_scale(T)
    pooled = gl.GompertzNBDLikelihood(x, tx * scale, T * scale, weights)
    per_row = PerRowTails(x, tx * scale, T * scale, weights)
    pareto = gl.ParetoNBDLikelihood(x, tx * scale, T * scale, weights)
    phi = gl._TO_PHI @ np.log(POINTS["b=1"])
    kinds = {"ggom value-and-gradient, per row (before)": lambda: per_row(phi),
             "ggom value-and-gradient, pooled (now)": lambda: pooled(phi),
             "ggom value, pooled (now)": lambda: pooled.log_likelihood(phi),
             "pareto value-and-gradient": lambda: pareto(np.delete(phi, 2))}
    a, b = per_row(phi), pooled(phi)
    print(f"pooled - per row: value {(b[0] - a[0]) / abs(a[0]):+.1e} relative, gradient {np.max(np.abs(b[1] - a[1])):.1e}")
    best = {name: [np.inf, np.inf] for name in kinds}
    for _ in range(reps):
        for name, call in kinds.items():
            _, wall, cpu = _timed(call)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    for name, (wall, cpu) in best.items():
        print(f"  {name:45s}: {wall:.3f} s wall, {cpu:.3f} s CPU (best of {reps})")


class GGomLimit:
    """The Pareto/NBD limit as the fit took it before: the GGom/NBD objective at b = RIDGE_B."""

    def __init__(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        self.objective = gl.GompertzNBDLikelihood(frequency, recency, T, weights)
        self.total_weight = self.objective.total_weight
        self.limited = gl._fixed_b(self.objective, float(np.log(gl.RIDGE_B)))

    def __call__(self, q: np.ndarray) -> Any:
        return self.limited(q)


def _counted_fit(columns: dict[str, np.ndarray], weights: np.ndarray, before: bool) -> tuple[Any, float, float, dict[str, int]]:
    """One whole fit, now or as before (module docstring), with its evaluations counted by kind."""
    count = {"ggom value-and-gradient": 0, "ggom value": 0, "pareto value-and-gradient": 0}
    ggom, pareto = gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood

    class CountedGGom(ggom):  # type: ignore[valid-type, misc]
        def __call__(self, phi: np.ndarray) -> Any:
            count["ggom value-and-gradient"] += 1
            return super().__call__(phi)

        def log_likelihood(self, phi: np.ndarray) -> float:
            count["ggom value"] += 1
            return super().log_likelihood(phi)

    class CountedPareto(pareto):  # type: ignore[valid-type, misc]
        def __call__(self, theta: np.ndarray) -> Any:
            count["pareto value-and-gradient"] += 1
            return super().__call__(theta)

    saved = (gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood)
    gl.GompertzNBDLikelihood = CountedGGom  # the fit builds its objectives by these names
    gl.ParetoNBDLikelihood = GGomLimit if before else CountedPareto
    try:
        result, wall, cpu = _timed(gl.fit, columns, weights)
    finally:
        gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood = saved
    return result, wall, cpu, count


def _compare_fit(columns: dict[str, np.ndarray], weights: np.ndarray, reps: int) -> None:
    """The fit now against before, alternating, best of ``reps``; the results' largest differences."""
    best: dict[str, list[float]] = {"before": [np.inf, np.inf], "now": [np.inf, np.inf]}
    results: dict[str, Any] = {}
    for _ in range(reps):
        for name in ("before", "now"):
            result, wall, cpu, count = _counted_fit(columns, weights, before=name == "before")
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
            results[name] = result
            print(f"fit {name:6s}: wall {wall:.1f} s, CPU {cpu:.1f} s, evaluations {count}", flush=True)
    for name, (wall, cpu) in best.items():
        r = results[name]
        print(f"best of {reps}, {name:6s}: wall {wall:.1f} s, CPU {cpu:.1f} s; status {r.status}, LL {r.log_likelihood!r}, "
              f"params {r.params}, limit {r.limit}")
    print(f"  ratio before/now: {best['before'][0] / best['now'][0]:.2f}x wall, {best['before'][1] / best['now'][1]:.2f}x CPU")
    old, new = results["before"], results["now"]
    print(f"  LL now - before {new.log_likelihood - old.log_likelihood:+.2e}; params relative "
          + ", ".join(f"{k} {new.params[k] / old.params[k] - 1:+.1e}" for k in old.params)
          + "; standard errors relative "
          + ", ".join(f"{k} {new.standard_errors[k] / old.standard_errors[k] - 1:+.1e}" for k in old.params))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _gil_share(columns: dict[str, np.ndarray], weights: np.ndarray, reps: int) -> None:
    """One value-and-gradient alone against two identical ones on two threads at once (module docstring, 6)."""
    x, tx, T = (columns[c] for c in ("frequency", "recency", "T"))
    scale = gl.time_scale(T)
    objective = gl.GompertzNBDLikelihood(x, tx * scale, T * scale, weights)
    phi = gl._TO_PHI @ np.log(POINTS["b=1"])
    objective(phi)  # warm-up (the Gauss-Legendre rules)

    def two_at_once() -> None:
        threads = [threading.Thread(target=objective, args=(phi,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    best = {"one alone": [np.inf, np.inf], "two on two threads": [np.inf, np.inf]}
    for _ in range(reps):
        for name, call in (("one alone", lambda: objective(phi)), ("two on two threads", two_at_once)):
            _, wall, cpu = _timed(call)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    for name, (wall, cpu) in best.items():
        print(f"  ggom value-and-gradient, {name:18s}: {wall:.3f} s wall, {cpu:.3f} s CPU (best of {reps})")
    ratio = best["two on two threads"][0] / best["one alone"][0]
    print(f"  two at once / one alone: {ratio:.2f}x wall -> share holding the GIL f ~ {ratio - 1:.2f} "
          f"(0: perfectly parallel, 1: serial); {_uptime()}", flush=True)


def _threaded_fit(columns: dict[str, np.ndarray], weights: np.ndarray, workers: int) -> tuple[Any, float, float, dict[str, int]]:
    """One whole fit with ``workers`` threads, its evaluations counted by kind (thread-safe)."""
    count = {"ggom value-and-gradient": 0, "ggom value": 0, "pareto value-and-gradient": 0}
    lock = threading.Lock()
    ggom, pareto = gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood

    def counted(kind: str) -> None:
        with lock:
            count[kind] += 1

    class CountedGGom(ggom):  # type: ignore[valid-type, misc]
        def __call__(self, phi: np.ndarray) -> Any:
            counted("ggom value-and-gradient")
            return super().__call__(phi)

        def log_likelihood(self, phi: np.ndarray) -> float:
            counted("ggom value")
            return super().log_likelihood(phi)

    class CountedPareto(pareto):  # type: ignore[valid-type, misc]
        def __call__(self, theta: np.ndarray) -> Any:
            counted("pareto value-and-gradient")
            return super().__call__(theta)

    saved = (gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood)
    gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood = CountedGGom, CountedPareto  # the fit builds its objectives by these names
    try:
        result, wall, cpu = _timed(lambda: gl.fit(columns, weights, workers=workers))
    finally:
        gl.GompertzNBDLikelihood, gl.ParetoNBDLikelihood = saved
    return result, wall, cpu, count


def _compare_threads(columns: dict[str, np.ndarray], weights: np.ndarray, reps: int) -> None:
    """The whole fit on one thread against two, alternating, best of ``reps`` (module docstring, 6)."""
    print(f"start: {_uptime()}", flush=True)
    _gil_share(columns, weights, max(reps, 3))
    best = {1: [np.inf, np.inf], 2: [np.inf, np.inf]}
    results: dict[int, Any] = {}
    for _ in range(reps):
        for workers in (1, 2):
            result, wall, cpu, count = _threaded_fit(columns, weights, workers)
            best[workers] = [min(best[workers][0], wall), min(best[workers][1], cpu)]
            results[workers] = result
            print(f"fit workers={workers}: wall {wall:.1f} s, CPU {cpu:.1f} s, evaluations {count}; {_uptime()}",
                  flush=True)
    for workers, (wall, cpu) in best.items():
        r = results[workers]
        print(f"best of {reps}, workers={workers}: wall {wall:.1f} s, CPU {cpu:.1f} s; status {r.status}, "
              f"LL {r.log_likelihood!r}, params {r.params}")
    print(f"  serial/threaded: {best[1][0] / best[2][0]:.2f}x wall; threaded CPU {best[2][1] / best[1][1]:.2f}x serial's")
    one, two = results[1], results[2]
    same = (one.params == two.params and one.log_likelihood == two.log_likelihood and one.status == two.status
            and np.array_equal(np.array(one.covariance, dtype=float), np.array(two.covariance, dtype=float), equal_nan=True)
            and one.limit == two.limit)
    print(f"  results identical bit for bit: {same}; end: {_uptime()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fit", action="store_true", help="the whole fit with the tails")
    parser.add_argument("--fit-rows", action="store_true", help="the whole fit row by row too (slow)")
    parser.add_argument("--compare-fit", type=int, default=0, metavar="N",
                        help="only the whole fit now against before, best of N (module docstring)")
    parser.add_argument("--evaluations", type=int, default=0, metavar="N",
                        help="only one evaluation of each kind the fit makes, best of N (module docstring)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="only the whole fit on one thread against two, best of N (module docstring)")
    args = parser.parse_args()

    summary = pq.read_table(args.source, columns=["frequency", "recency", "T"]).slice(0, args.rows).to_pandas()
    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    columns = {c: unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    x, tx, T = (columns[c] for c in ("frequency", "recency", "T"))
    if args.evaluations:
        print(f"{args.rows:,} rows: {len(x):,} distinct (x, t_x, T)")
        _evaluations(columns, weights, args.evaluations)
        return
    if args.threads:
        print(f"{args.rows:,} rows: {len(x):,} distinct (x, t_x, T)")
        _compare_threads(columns, weights, args.threads)
        return
    if args.compare_fit:
        print(f"{args.rows:,} rows: {len(x):,} distinct (x, t_x, T)")
        _compare_fit(columns, weights, args.compare_fit)
        return
    scale = gl.time_scale(T)
    tails, wall, cpu = _timed(gl.GompertzNBDLikelihood, x, tx * scale, T * scale, weights)
    rows = RowByRow(x, tx * scale, T * scale, weights)
    print(f"{args.rows:,} rows: {len(x):,} distinct (x, t_x, T), {len(tails.pair_x):,} distinct (x, u) pairs "
          f"(pairing: {wall:.2f} s wall, {cpu:.2f} s CPU)")

    for name, theta in POINTS.items():
        phi = gl._TO_PHI @ np.log(theta)
        ll_rows, ll_tails = rows.log_likelihood(phi), tails.log_likelihood(phi)
        gradient_gap = np.max(np.abs(tails(phi)[1] - rows(phi)[1]))
        print(f"  {name:13s} LL {ll_rows:.12e}, tails - rows {(ll_tails - ll_rows) / abs(ll_rows):+.1e} relative; "
              f"largest gradient difference {gradient_gap:.1e}")

    phi = gl._TO_PHI @ np.log(POINTS["b=1"])
    best: dict[str, list[float]] = {"rows": [np.inf, np.inf], "tails": [np.inf, np.inf]}
    for _ in range(args.reps):
        for name, objective in (("rows", rows), ("tails", tails)):
            _, wall, cpu = _timed(objective, phi)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    for name, (wall, cpu) in best.items():
        print(f"one value-and-gradient, {name:5s}: {wall:.3f} s wall, {cpu:.3f} s CPU (best of {args.reps})")
    print(f"  ratio rows/tails: {best['rows'][0] / best['tails'][0]:.1f}x wall, {best['rows'][1] / best['tails'][1]:.1f}x CPU")

    if args.fit:
        _fit(gl.GompertzNBDLikelihood, columns, weights)
    if args.fit_rows:
        _fit(RowByRow, columns, weights)


if __name__ == "__main__":
    main()
