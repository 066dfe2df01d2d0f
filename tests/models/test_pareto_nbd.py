"""Pareto/NBD through the adapter: published CDNOW values, reproducibility, convergence checks.

Sources (REFERENCE.md):
[FHL05n] Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB":
         CDNOW r 0.553, alpha 10.578, s 0.606, beta 11.669; log-likelihood -9595.0.
[BTYD]   R BTYD walkthrough: customer x=26, t_x=30.85714, T=31: E[Y(52)] 25.45647, P(alive) 0.997874.
"""

from __future__ import annotations

import numpy as np
import pytest

from clvmodel.errors import ConvergenceFailure
from clvmodel.models import lifetimes_adapter
from clvmodel.models.base import collapse
from clvmodel.models.pareto_nbd import ParetoNBDModel

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return ParetoNBDModel().fit(cdnow_summary)


def test_cdnow_published_estimates(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=1e-3), name  # [FHL05n]
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)  # [FHL05n]
    assert fitted.n_ == 2357
    assert all(np.isfinite(v) and v > 0 for v in fitted.standard_errors_.values())


def test_fit_is_reproducible(cdnow_summary, fitted):
    """lifetimes starts Pareto/NBD at random values; the adapter's fixed start makes refits identical."""
    assert ParetoNBDModel().fit(cdnow_summary).params_ == fitted.params_


def test_btyd_customer_forecasts():
    model = ParetoNBDModel.from_dict({"params": {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6690}})
    x, tx, T = np.array([26.0]), np.array([30.85714]), np.array([31.0])
    assert model.expected_purchases(x, tx, T, t=52.0)[0] == pytest.approx(25.45647, rel=1e-3)  # [BTYD]
    assert model.p_alive(x, tx, T)[0] == pytest.approx(0.997874, abs=1e-4)  # [BTYD]


def test_last_purchase_on_the_last_day_gives_finite_forecasts():
    """lifetimes returns NaN for t_x = T with large x; P(alive) is exactly 1 there (a purchase at T)."""
    model = ParetoNBDModel.from_dict({"params": {"r": 0.553, "alpha": 74.0, "s": 0.606, "beta": 81.7}})
    x = np.array([150.0, 1000.0, 10000.0])
    T = np.array([700.0, 7300.0, 7300.0])
    alive = model.p_alive(x, T, T)
    expected = model.expected_purchases(x, T, T, t=365.0)
    np.testing.assert_array_equal(alive, [1.0, 1.0, 1.0])
    assert np.all(np.isfinite(expected)) and np.all(expected > 0)
    # Continuity: one day earlier lifetimes' own formula applies, and the values nearly agree.
    earlier = model.expected_purchases(x, T - 1e-6, T, t=365.0)
    np.testing.assert_allclose(earlier, expected, rtol=1e-4)


def test_stopping_early_is_reported_not_returned(cdnow_summary):
    unique, weights, _ = collapse(cdnow_summary, ["frequency", "recency", "T"])
    columns = {c: unique[c].to_numpy() for c in ("frequency", "recency", "T")}
    with pytest.raises(ConvergenceFailure, match=r"^pareto_nbd fit stopped before the optimum \(largest gradient"):
        lifetimes_adapter.fit("pareto_nbd", columns, weights, maxiter=20)
