"""Simulated BG/NBD customers: the model's generative story, vectorised, for tests and benchmarks.

The BG/NBD model (Fader, Hardie & Lee 2005, section 2, assumptions (i)-(v) in [1]_) describes a
customer observed for ``T`` periods after a first purchase at time 0:

(i)-(ii) while active, repeat purchases follow a Poisson process with rate ``λ``, and ``λ`` varies
    across customers as ``Gamma(r, α)`` (shape ``r``, rate ``α``);
(iii)-(iv) after each repeat purchase the customer becomes inactive with probability ``p``, and
    ``p`` varies across customers as ``Beta(a, b)``;
(v) ``λ`` and ``p`` are independent.

Drawn here without a loop over purchases: the count the Poisson process would make in ``(0, T]``
is ``N ~ Poisson(λ T)``; the number of repeat purchases a customer makes before dropping out
(dropping out right after the ``K``-th) is ``K ~ Geometric(p)`` on ``1, 2, ...``, independent of
the purchase times; so the repeat purchases seen are ``x = min(N, K)``, and their times are the
first ``x`` of ``N`` points spread uniformly on ``(0, T]`` (the Poisson process given its count).
:func:`repeat_times` draws those ``x`` order statistics with ``x`` exponentials per customer:
with ``E_1..E_{N+1}`` standard exponentials the sorted uniforms are ``cumsum(E)_k / sum(E)``, and
the ``N + 1 - x`` exponentials after the ``x``-th enter only through their sum, one
``Gamma(N + 1 - x)`` draw.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S., and Lee, K. L. (2005), "'Counting Your Customers' the Easy
   Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24 (2), 275-284.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["SimulatedCustomers", "simulate_customers", "repeat_times", "simulate_summary"]


@dataclass(frozen=True)
class SimulatedCustomers:
    """One simulated BG/NBD customer per position of every array.

    Attributes
    ----------
    rate
        ``λ``, purchases per unit of ``T`` while active.
    dropout
        ``p``, the probability of becoming inactive after each repeat purchase.
    T
        Time observed since the first purchase.
    events
        ``N``: the repeat purchases in ``(0, T]`` had the customer stayed active throughout.
    frequency
        ``x = min(N, K)``: the repeat purchases made in ``(0, T]``.
    """

    rate: np.ndarray
    dropout: np.ndarray
    T: np.ndarray
    events: np.ndarray
    frequency: np.ndarray


def simulate_customers(
    rng: np.random.Generator, params: Mapping[str, float], T: ArrayLike, *, unit: float = 1.0
) -> SimulatedCustomers:
    """Draw ``λ``, ``p``, ``N`` and ``x`` for one customer per value of ``T``; see the module docstring.

    Parameters
    ----------
    rng
        The source of randomness. Draws are made in this order, one array each: ``λ`` (gamma),
        ``p`` (beta), ``N`` (Poisson), ``K`` (geometric); a caller that draws before or after
        gets the same numbers for the same seed.
    params
        ``r``, ``alpha``, ``a``, ``b`` (other keys are ignored), with ``alpha`` per period of the
        parameters' time unit.
    T
        Time observed since each customer's first purchase (in the parameters' time unit, or see
        ``unit``); its length is the number of customers.
    unit
        The length of one period of the parameters in the unit of ``T``: 7 for parameters per week
        and ``T`` in days (``λ`` is then converted to per day exactly as ``λ_week / 7``). 1 when
        both are in the same unit.

    Returns
    -------
    SimulatedCustomers
        With ``rate`` in purchases per unit of ``T``.
    """
    T = np.asarray(T, dtype=float)
    n = T.size
    rate = rng.gamma(params["r"], 1.0 / params["alpha"], n) / unit
    dropout = rng.beta(params["a"], params["b"], n)
    events = rng.poisson(rate * T)  # purchases in (0, T] if alive throughout
    lifetime = rng.geometric(dropout)  # repeat purchases before dropping out (drop after the K-th)
    return SimulatedCustomers(rate, dropout, T, events, np.minimum(events, lifetime))


def repeat_times(
    rng: np.random.Generator, frequency: ArrayLike, events: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """The times of every customer's repeat purchases: the first ``x`` of ``N`` uniform points on ``(0, T]``.

    Parameters
    ----------
    rng
        Draws ``sum(x)`` exponentials, then one gamma per customer.
    frequency, events, T
        ``x``, ``N >= x`` and ``T`` per customer (as in :class:`SimulatedCustomers`; a caller may
        lower ``x``, e.g. to cut a table at a number of rows).

    Returns
    -------
    owner, times : numpy.ndarray
        One entry per repeat purchase, grouped by customer in customer order and increasing in
        time within a customer: the customer's index and the purchase's time in ``(0, T]``.
    """
    x = np.asarray(frequency)
    events = np.asarray(events)
    T = np.asarray(T, dtype=float)
    n = x.size
    owner = np.repeat(np.arange(n), x)
    gaps = rng.exponential(size=int(x.sum()))
    running = np.cumsum(gaps)
    ends = np.cumsum(x)
    starts = ends - x
    has = x > 0
    base = np.zeros(n)
    base[has] = running[starts[has]] - gaps[starts[has]]
    within = running - base[owner]  # cumsum(E)_k of each customer's own exponentials
    last = np.zeros(n)
    last[has] = within[ends[has] - 1]
    unused = rng.gamma(events - x + 1.0, 1.0)  # the sum of the N + 1 - x exponentials not drawn; shape >= 1
    return owner, T[owner] * within / (last[owner] + unused[owner])


def simulate_summary(
    rng: np.random.Generator, params: Mapping[str, float], T: ArrayLike, *, unit: float = 1.0
) -> pd.DataFrame:
    """An RFM summary of simulated BG/NBD customers: ``frequency, recency, T``, one row per value of ``T``.

    :func:`simulate_customers`, then :func:`repeat_times` for the time of each customer's last
    repeat purchase (``recency``, 0 without one). Same arguments as :func:`simulate_customers`;
    ``recency`` and ``T`` are in the unit of ``T``.
    """
    customers = simulate_customers(rng, params, T, unit=unit)
    x = customers.frequency
    _, times = repeat_times(rng, x, customers.events, customers.T)
    recency = np.zeros(x.size)
    has = x > 0
    recency[has] = times[np.cumsum(x)[has] - 1]
    return pd.DataFrame({"frequency": x.astype(float), "recency": recency, "T": customers.T})
