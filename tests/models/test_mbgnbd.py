"""MBG/NBD through the adapter on CDNOW.

Source: Batislam, Denizel & Filiztekin (2007); the values r 0.525, alpha 6.183, a 0.891, b 1.614
are those of BTYDplus and of lifetimes' own tests (REFERENCE.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from clvmodel.models.mbgnbd import ModifiedBetaGeoModel

PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def test_cdnow_published_estimates(cdnow_summary):
    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    for name, value in PUBLISHED.items():
        assert model.params_[name] == pytest.approx(value, abs=1e-3), name
    assert np.isfinite(model.log_likelihood_) and model.log_likelihood_ < 0


def test_one_time_buyers_are_not_certainly_alive(cdnow_summary, cdnow_bgnbd):
    """The one difference from BG/NBD: P(alive | x = 0) < 1 (a customer may leave after the first purchase)."""
    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    x, tx, T = np.zeros(3), np.zeros(3), np.array([1.0, 20.0, 38.0])
    assert np.all(model.p_alive(x, tx, T) < 1)
    np.testing.assert_array_equal(cdnow_bgnbd.p_alive(x, tx, T), 1.0)
    assert np.all(np.diff(model.p_alive(x, tx, T)) < 0)  # the longer the silence, the likelier gone


def test_apparel_40_weeks_converges(apparel) -> None:
    # Issue 13: the CLVTools apparel data, calibration to 2005-10-09 (40 weeks). BG/NBD and
    # Pareto/NBD have no finite optimum there (a ridge, see their tests); MBG/NBD, whose one-time
    # buyers may also drop out, has one: a stationary point of lifetimes' likelihood.
    import datetime as dt
    from autograd import grad
    from lifetimes import ModifiedBetaGeoFitter

    from clvmodel.models import mle

    summary = apparel(dt.date(2005, 10, 9))
    model = ModifiedBetaGeoModel().fit(summary)
    assert model.status_ == "converged" and np.isfinite(model.log_likelihood_)
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    log_params = np.log([model.params_[k] for k in ("r", "alpha", "a", "b")])
    gradient = grad(ModifiedBetaGeoFitter._negative_log_likelihood)(log_params, x.astype(int), tx, T, np.ones(len(x)), 0.0)
    assert np.max(np.abs(gradient)) <= mle.GRADIENT_TOLERANCE  # the mean over customers, in data weeks
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())
