"""The purchase models' forecast kernel: E[Y(t) | x, t_x, T] = P(alive) × E[Y(t) | alive at T, x, T].

For BG/NBD, MBG/NBD and Pareto/NBD, given that a customer is alive at ``T`` the past enters the
forecast only through ``x`` and ``T``: equation (10) of Fader, Hardie & Lee (2005) is exactly
``P(alive | x, t_x, T)`` times that conditional expectation. The second factor is the costly one
(Gauss hypergeometric functions), so it is evaluated once per distinct ``(x, T)`` pair — with daily
data far fewer than distinct ``(x, t_x, T)`` rows — and the first, cheap one per customer.

Every forecast of expected purchases goes through :func:`alive_product`:
:meth:`clvmodel.models.purchase.PurchaseModel.expected_purchases` (through
:func:`expected_purchases`), the discounted CLV of :mod:`clvmodel.clv` and the bootstrap intervals
of :mod:`clvmodel.uncertainty`, which choose their own pairs and horizons.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["alive_product", "expected_purchases", "distinct_pairs", "equal_runs"]


def alive_product(p_alive: np.ndarray, given_alive: np.ndarray, pair_of_row: np.ndarray) -> np.ndarray:
    """Each customer's ``E[Y(t)]``: its P(alive) times its pair's ``E[Y(t) | alive at T, x, T]``, at least 0.

    Parameters
    ----------
    p_alive
        ``P(alive | x, t_x, T)`` per customer, shape ``(n,)``.
    given_alive
        ``E[Y(t) | alive at T, x, T]`` per distinct ``(x, T)`` pair, shape ``(pairs,)`` or
        ``(H, pairs)`` for ``H`` horizons.
    pair_of_row
        Each customer's pair (an index into the last axis of ``given_alive``), shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)`` or ``(H, n)``, a new array.
    """
    # Products formed in place: every fresh n-vector costs page faults on a first call.
    expected = given_alive[..., pair_of_row]
    expected *= p_alive
    # E[Y(t)] >= 0; a closed form (lifetimes' for MBG/NBD, Pareto/NBD) can cancel to about -1e-9 near t = 0.
    return np.maximum(expected, 0.0, out=expected)


def expected_purchases(model: Any, frequency: Any, recency: Any, T: Any, *, t: float | np.ndarray) -> np.ndarray:
    """``E[Y(t) | x, t_x, T]`` of a fitted purchase model, by :func:`alive_product` over distinct ``(x, T)``.

    Parameters
    ----------
    model
        A fitted purchase model: ``p_alive(x, t_x, T)`` and ``expected_purchases_if_alive(x, T, *, t)``.
    frequency, recency, T
        Customers' ``x``, ``t_x``, ``T`` (broadcast against each other).
    t
        Horizon(s): ``t`` of shape ``(H, 1)`` with customer arrays of shape ``(n,)`` gives an
        ``(H, n)`` matrix of cumulative expectations.
    """
    x = np.atleast_1d(np.asarray(frequency, dtype=float))
    T_ = np.atleast_1d(np.asarray(T, dtype=float))
    x, tx, T_ = np.broadcast_arrays(x, np.atleast_1d(np.asarray(recency, dtype=float)), T_)
    pair_x, pair_T, pair_of_row = distinct_pairs(np.ascontiguousarray(x), np.ascontiguousarray(T_))
    given_alive = np.asarray(model.expected_purchases_if_alive(pair_x, pair_T, t=t), dtype=float)
    return alive_product(model.p_alive(x, tx, T_), given_alive, pair_of_row)


def distinct_pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``(x, T)`` pairs and each row's pair: ``(pair_x, pair_T, pair_of_row)``.

    Each column is coded on its own (repeat counts directly, T by one hash pass) and the pair of
    codes is numbered through a table of every possible pair when that is small, as it is for
    real summaries (a few hundred counts × a few hundred ages): about three times faster than a
    group-by on both columns (:func:`clvmodel.models.base.collapse`), whose sorted groups are
    not needed here. Each pair's forecast is elementwise, so the order of the pairs changes no
    value. Missing values form their own group, as in ``collapse``.
    """
    T_code, T_values = pd.factorize(T, use_na_sentinel=False)
    combined, x_values = _count_codes(x)  # x's codes, made the pairs' in place
    width = max(len(T_values), 1)
    combined *= width
    combined += T_code
    size = len(x_values) * width
    if size <= 4 * len(x) + 4096:
        table = np.zeros(size, dtype=np.intp)
        table[combined] = 1
        present = np.flatnonzero(table)
        table[present] = np.arange(len(present))
        pair_of_row = table[combined]
    else:
        pair_of_row, present = pd.factorize(combined)
    return np.asarray(x_values)[present // width], np.asarray(T_values)[present % width], pair_of_row


def _count_codes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and values of a column of repeat counts: the counts themselves when they are small whole
    numbers (no hashing), else by :func:`pandas.factorize`."""
    if len(x) and np.isfinite(top := x.max()) and 0 <= x.min() and top < 2**20:
        codes = x.astype(np.intp)
        if np.array_equal(codes, x):  # whole numbers (compared in float, chunk by chunk)
            return codes, np.arange(int(top) + 1, dtype=float)
    codes, values = pd.factorize(x, use_na_sentinel=False)
    return codes.astype(np.intp), np.asarray(values)


def equal_runs(codes: np.ndarray) -> list[tuple[slice, int]]:
    """The runs of equal values in ``codes``: ``(slice, value)`` for each.

    The many-draw forecasts (:class:`clvmodel.models.bgnbd_forecast.DrawForecast`,
    :class:`clvmodel.models.pareto_nbd_forecast.DrawForecast`) get their rows sorted by ``x`` then
    ``T``, so a tile's codes of ``x`` or of ``(x, T)`` come in a few runs: a term of a run is one row
    of a table broadcast over the run, not a gather per row.
    """
    edges = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    bounds = [0, *edges.tolist(), len(codes)]
    return [(slice(lo, hi), int(codes[lo])) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
