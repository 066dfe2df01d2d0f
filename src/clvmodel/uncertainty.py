"""Per-customer intervals by parametric bootstrap of the fitted parameters.

The maximum-likelihood estimates are asymptotically normal; we draw ``N`` parameter vectors
from that normal **on the log scale** (the scale the models are fitted on, so every draw is
positive), with the covariance stored in the model (inverse Hessian of the negative
log-likelihood), recompute each customer's forecast under every draw, and report the
``(1 − level)/2`` and ``(1 + level)/2`` quantiles as ``*_lower`` / ``*_upper``.

What the intervals cover: uncertainty in the *population* parameters (how well the model is
estimated), not the Poisson noise of one customer's future purchases — a customer's realised
count will fall outside them often. Expected purchases use the exact ``E[Y(H)]`` of each draw;
CLV per draw is ``margin × E_d[M] × E_d[Y(H)] × w``, where ``w`` is the point forecast's share of
discounted to undiscounted purchases (exactly 1 when the discount rate is 0; otherwise the timing
of purchases within the horizon is taken from the point estimate, which moves far less than the
level does).

Vectorised over draws: a family with a many-draw forecast (``expected_purchases_draws``: BG/NBD,
Pareto/NBD) evaluates ``E[Y(H)]`` for all draws at once on the distinct ``(x, t_x, T)`` rows of the
whole input, in chunks of rows (so memory stays at ``chunk × draws`` floats), each costly piece once
per distinct value it depends on (the ₂F₁ terms per distinct ``(x, T)``); the quantiles of a row are
taken once and shared by its customers, and the CLV draws are formed and ranked once per "case", the
customers of one row with equal CLV inputs (mean spend, or the point order value without a spend model,
and timing share ``w``), in chunks of cases. The blocks of rows run in threads (numpy's and scipy's loops
release the GIL), each writing its own rows. Every value equals the draw-by-draw path (:func:`interval_columns_by_draw`, which
the other families still take) to rounding: the draws are the same (same seed), each draw's forecast
is the same arithmetic, and the quantiles are numpy's linear ones (:func:`_row_quantiles`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.models.alive import alive_product
from clvmodel.models.base import FittedModel, collapse
from clvmodel.models.cores import usable_cores

__all__ = ["parameter_draws", "interval_columns", "interval_columns_by_draw"]

_CHUNK = 20_000
#: Distinct rows per block of the many-draw path (its ₂F₁ terms once per block), and rows or customers
#: per tile of its elementwise work: 64 × 1,000 draws = 0.5 MB a matrix, which stays in the cache.
_DRAW_CHUNK = 4096
#: At most this many threads by default (each holds one block's tables: tens of MB at 1,000 draws).
MAX_WORKERS = 4
_TILE = 64


def parameter_draws(model: FittedModel, draws: int, seed: int) -> list[dict[str, float]] | None:
    """``draws`` parameter dicts from N(log θ̂, Σ) mapped back by exp; ``None`` without a covariance.

    A covariate model's coefficients (its ``linear_params()``: ``life.*``, ``trans.*``) are fitted
    on their own scale (``covariance_`` is over log base parameters and raw coefficients), so they
    are drawn as they are, not exponentiated.
    """
    if model.covariance_ is None or not model.params_:
        return None
    held = list(model.params_)
    cov = np.asarray(model.covariance_, dtype=float)
    if cov.shape != (len(held), len(held)) or not np.all(np.isfinite(cov)):
        return None
    # Sample in sorted-name order so that the same seed gives the same draws however the
    # parameters happen to be ordered (lifetimes' order in memory, sorted keys after JSON).
    names = sorted(held)
    order = [held.index(k) for k in names]
    cov = cov[np.ix_(order, order)]
    linear_params = getattr(model, "linear_params", None)
    linear = np.isin(names, list(linear_params()) if callable(linear_params) else [])
    values = np.array([model.params_[k] for k in names], dtype=float)
    mean = np.where(linear, values, np.log(np.where(linear, 1.0, values)))
    rng = np.random.default_rng(seed)
    samples = rng.multivariate_normal(mean, cov, size=draws, method="eigh")
    samples[:, ~linear] = np.exp(samples[:, ~linear])
    return [dict(zip(names, row)) for row in samples]


def interval_columns_by_draw(
    trained: Any,
    rfm: pd.DataFrame,
    point: pd.DataFrame,
    *,
    horizon: int,
    margin: float,
    level: float,
    draws: int,
    seed: int,
) -> pd.DataFrame:
    """:func:`interval_columns` one draw at a time: the model rebuilt with each draw's parameters.

    The path of the families without a many-draw forecast, and the reference the many-draw path is
    tested against.

    Parameters
    ----------
    trained
        A :class:`~clvmodel.artifact.TrainedModel` with a purchase model (and maybe a spend model).
    rfm, point
        The RFM rows and their point forecast (``expected_purchases``, ``expected_order_value``,
        ``predicted_clv``), aligned.
    level, draws, seed
        Central interval level, number of parameter draws, random seed.
    """
    purchase, spend = trained.purchase_model, trained.spend_model
    columns = ["expected_purchases_lower", "expected_purchases_upper", "predicted_clv_lower", "predicted_clv_upper"]
    out = pd.DataFrame(np.nan, index=rfm.index, columns=columns)
    purchase_draws = parameter_draws(purchase, draws, seed)
    if purchase_draws is None:
        return out
    spend_draws = parameter_draws(spend, draws, seed + 1) if spend is not None else None
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    frequency = rfm["frequency"].to_numpy(dtype=float)
    monetary = rfm["monetary_value"].to_numpy(dtype=float)
    undiscounted = margin * point["expected_order_value"].to_numpy() * point["expected_purchases"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        timing = np.where(undiscounted > 0, point["predicted_clv"].to_numpy() / undiscounted, 1.0)
    rebuilt = type(purchase)()
    rebuilt_spend = type(spend)() if spend is not None else None
    for start in range(0, len(rfm), _CHUNK):
        rows = slice(start, start + _CHUNK)
        chunk = rfm.iloc[rows]
        # Distinct rows and distinct (x, T) pairs once per chunk; each draw then costs one
        # hypergeometric evaluation per pair (see PurchaseModel.expected_purchases).
        unique, _, inverse = collapse(chunk, ["frequency", "recency", "T"])
        x, tx, T = (unique[c].to_numpy() for c in ("frequency", "recency", "T"))
        pairs, _, pair_of_row = collapse(unique, ["frequency", "T"])
        xp, Tp = pairs["frequency"].to_numpy(), pairs["T"].to_numpy()
        purchases = np.empty((draws, len(chunk)))
        values = np.empty((draws, len(chunk)))
        for d, params in enumerate(purchase_draws):
            rebuilt.params_ = params
            given_alive = rebuilt.expected_purchases_if_alive(xp, Tp, t=float(horizon))
            purchases[d] = alive_product(rebuilt.p_alive(x, tx, T), given_alive, pair_of_row)[inverse]
            if rebuilt_spend is not None and spend_draws is not None:
                rebuilt_spend.params_ = spend_draws[d]
                valid = spend_draws[d]["q"] > 1  # E[M] = p v / (q - 1) exists only for q > 1
                values[d] = rebuilt_spend.expected_order_value(frequency[rows], monetary[rows]) if valid else np.nan
            else:
                values[d] = point["expected_order_value"].to_numpy()[rows]
        clv = margin * purchases * values * timing[rows]
        # nan-aware: a spend draw with q <= 1 has no finite mean spend and is left out.
        invalid = ~np.isfinite(clv)
        clv[invalid] = np.nan
        out.iloc[rows, 0:2] = np.quantile(purchases, quantiles, axis=0).T
        # np.nanquantile is several times slower; pay for it only when a draw was left out.
        out.iloc[rows, 2:4] = (np.nanquantile if invalid.any() else np.quantile)(clv, quantiles, axis=0).T
    return out


def interval_columns(
    trained: Any,
    rfm: pd.DataFrame,
    point: pd.DataFrame,
    *,
    horizon: int,
    margin: float,
    level: float,
    draws: int,
    seed: int,
    chunk: int = _DRAW_CHUNK,
    tile: int = _TILE,
    workers: int | None = None,
) -> pd.DataFrame:
    """``expected_purchases_lower/upper`` and ``predicted_clv_lower/upper`` for each RFM row.

    Parameters
    ----------
    trained
        A :class:`~clvmodel.artifact.TrainedModel` with a purchase model (and maybe a spend model).
    rfm, point
        The RFM rows and their point forecast (``expected_purchases``, ``expected_order_value``,
        ``predicted_clv``), aligned.
    level, draws, seed
        Central interval level, number of parameter draws, random seed.
    chunk, tile
        Distinct rows per block of the many-draw path (its costly pieces evaluated per block), and
        rows, or customers, per tile of its elementwise work; the values do not depend on either.
    workers
        Threads over the blocks of the many-draw path (default: the cores this process may use, at most
        :data:`MAX_WORKERS`); the values do not depend on it.

    Notes
    -----
    A purchase family with a many-draw forecast (``expected_purchases_draws``) and a factorised
    forecast takes the vectorised path (module docstring); any other takes
    :func:`interval_columns_by_draw`. Both give the same values.
    """
    purchase, spend = trained.purchase_model, trained.spend_model
    many = getattr(purchase, "expected_purchases_draws", None)
    if many is None or not getattr(purchase, "factorised", False):
        return interval_columns_by_draw(trained, rfm, point, horizon=horizon, margin=margin, level=level,
                                        draws=draws, seed=seed)
    columns = ["expected_purchases_lower", "expected_purchases_upper", "predicted_clv_lower", "predicted_clv_upper"]
    purchase_draws = parameter_draws(purchase, draws, seed)
    if purchase_draws is None:
        return pd.DataFrame(np.nan, index=rfm.index, columns=columns)
    by_name = {k: np.array([d[k] for d in purchase_draws]) for k in purchase_draws[0]}
    if not getattr(many, "accepts", lambda _: True)(by_name):
        return interval_columns_by_draw(trained, rfm, point, horizon=horizon, margin=margin, level=level,
                                        draws=draws, seed=seed)
    spend_draws = parameter_draws(spend, draws, seed + 1) if spend is not None else None
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    monetary = rfm["monetary_value"].to_numpy(dtype=float)
    point_value = point["expected_order_value"].to_numpy(dtype=float)
    undiscounted = margin * point_value * point["expected_purchases"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        timing = np.where(undiscounted > 0, point["predicted_clv"].to_numpy() / undiscounted, 1.0)
    with_spend = spend is not None and spend_draws is not None

    # Distinct (x, t_x, T) rows of the whole input, sorted by x then T then t_x, so that the rows
    # of one x sit together and a chunk of rows holds few distinct (x, T) and (x, t_x), on which
    # the ₂F₁ terms are evaluated.
    unique, _, row_of = collapse(rfm, ["frequency", "T", "recency"])
    x, tx, T = (unique[c].to_numpy() for c in ("frequency", "recency", "T"))
    # Customers whose CLV draws are the same numbers, one "case" each: the same row, the same value
    # input (mean spend m̄ with a spend model, else the point order value) and the same timing share
    # (equal for equal inputs). Cases come sorted by row, so a row's cases are contiguous.
    cases, _, case_of = collapse(
        pd.DataFrame({"row": row_of, "value": monetary if with_spend else point_value, "timing": timing}),
        ["row", "value", "timing"],
    )
    case_row = cases["row"].to_numpy().astype(np.intp)
    case_value, case_timing = cases["value"].to_numpy(), cases["timing"].to_numpy()
    case_starts = np.searchsorted(case_row, np.arange(len(unique) + 1))
    spend_table = _order_value_terms(spend_draws, x[case_row]) if with_spend else None
    purchase_bounds = np.empty((len(unique), 2))
    case_bounds = np.empty((len(cases), 2))
    tile = max(1, min(tile, chunk))

    def run_block(bounds: tuple[int, int]) -> None:
        """One block of rows: its forecast, the bounds of its rows and of their cases (disjoint slices)."""
        first, last = bounds
        # Tiles of rows (and of cases) small enough for the cache, in buffers reused throughout the block.
        out_buffer, work_buffer, clv_buffer, value_buffer = (np.empty((tile, draws)) for _ in range(4))
        forecast = many(by_name, x[first:last], tx[first:last], T[first:last], float(horizon))
        for begin in range(first, last, tile):
            end = min(begin + tile, last)
            # E[Y(H)] of these rows under every draw: (rows, draws).
            purchases = forecast.fill(begin - first, end - first, out_buffer, work_buffer)
            purchase_bounds[begin:end] = _row_quantiles(purchases, quantiles)
            # Their cases, `tile` at a time (one row may stand for many):
            # margin × E_d[Y(H)] × E_d[M] × timing, in that order (as the draw-by-draw path).
            for since in range(case_starts[begin], case_starts[end], tile):
                part = slice(since, min(since + tile, case_starts[end]))
                size = part.stop - part.start
                # Gathers into the reused buffers; mode="clip" (the indices are valid) as numpy buffers an
                # `out` in its default mode="raise", three times slower.
                clv = np.take(purchases, case_row[part] - begin, axis=0, out=clv_buffer[:size], mode="clip")
                if margin != 1.0:
                    clv *= margin
                if spend_table is not None:
                    weight, population, code = spend_table
                    values = np.take(weight, code[part], axis=0, out=value_buffer[:size], mode="clip")
                    values *= case_value[part][:, None]
                    values += population[code[part]]  # a + b == b + a: (1 − w) E[M] + w m̄ as there
                    clv *= values
                else:
                    clv *= case_value[part][:, None]
                clv *= case_timing[part][:, None]
                clv.sort(axis=1)
                case_bounds[part] = _sorted_quantiles(clv, quantiles)
                # Rows with a value that is not finite (sorted to an end): nan-aware, as there (a spend
                # draw with q <= 1 has no finite mean spend and is left out). Order does not matter.
                invalid = ~(np.isfinite(clv[:, 0]) & np.isfinite(clv[:, -1]))
                if invalid.any():
                    rows = clv[invalid]
                    rows[~np.isfinite(rows)] = np.nan
                    case_bounds[np.arange(part.start, part.stop)[invalid]] = np.nanquantile(rows, quantiles, axis=1).T

    blocks = _blocks(x, chunk)
    workers = min(len(blocks), _default_workers() if workers is None else max(1, int(workers)))
    if workers > 1:
        # numpy's and scipy's loops release the GIL: the blocks run in parallel, each writing its own rows.
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run_block, blocks))  # list(): a block's exception is raised here
    else:
        for bounds in blocks:
            run_block(bounds)
    clv_bounds = case_bounds[case_of]
    return pd.DataFrame(np.hstack([purchase_bounds[row_of], clv_bounds]), index=rfm.index, columns=columns)


def _default_workers() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one), at most :data:`MAX_WORKERS`."""
    return max(1, min(usable_cores(), MAX_WORKERS))


def _blocks(x: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """Blocks of the rows (sorted by ``x``) for the many-draw forecasts: each ends where ``x`` changes
    once it holds ``chunk`` rows, or at ``16 × chunk`` rows, so that the groups of one ``x``
    (``(x, T)`` and ``(x, t_x)``, on which the ₂F₁ terms are evaluated) are rarely split; a block's
    tables hold one row per group, the elementwise work runs in tiles."""
    changes = np.flatnonzero(x[1:] != x[:-1]) + 1
    blocks, first = [], 0
    while first < len(x):
        at = np.searchsorted(changes, first + chunk)  # the first change at or after `chunk` rows
        last = int(changes[at]) if at < len(changes) else len(x)
        last = min(last, first + 16 * chunk)
        blocks.append((first, last))
        first = last
    return blocks


def _order_value_terms(spend_draws: list[dict[str, float]], frequency: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gamma-Gamma's E[M | x, m̄] = (1 − w) p v/(q − 1) + w m̄, ``w = p x/(p x + q − 1)``, as
    :meth:`~clvmodel.models.gamma_gamma.GammaGammaModel.expected_order_value` computes it per draw:
    ``w`` and the first term per distinct ``x`` × draw (NaN for a draw with ``q ≤ 1``, which has no
    mean), and each customer's code into them."""
    p, q, v = (np.array([d[k] for d in spend_draws]) for k in ("p", "q", "v"))
    counts, code = np.unique(frequency, return_inverse=True)
    f = counts[:, None]
    weight = p * f / (p * f + q - 1)
    population = (1 - weight) * (p * v / (q - 1))
    population[:, ~(q > 1)] = np.nan
    return weight, population, code.reshape(-1)


def _row_quantiles(matrix: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """``np.quantile(matrix, quantiles, axis=1).T`` (linear interpolation), by one sort of each row.

    numpy's sort of contiguous rows is several times faster than the partition ``np.quantile``
    does; the order statistics are the same numbers, and they are interpolated as numpy does
    (``_lerp``), so the result is the same to the bit. A row holding NaN gives NaN, as there.
    """
    return _sorted_quantiles(np.sort(matrix, axis=1), quantiles)


def _sorted_quantiles(ordered: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """:func:`_row_quantiles` of rows already sorted (NaN last, as ``np.sort`` puts it)."""
    n = ordered.shape[1]
    out = np.empty((ordered.shape[0], len(quantiles)))
    for i, quantile in enumerate(quantiles):
        virtual = (n - 1) * quantile
        below = int(np.floor(virtual))
        above = min(below + 1, n - 1)
        gamma = virtual - below
        a, b = ordered[:, below], ordered[:, above]
        diff = b - a
        out[:, i] = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
    out[np.isnan(ordered[:, -1])] = np.nan
    return out
