"""Tests for the Gamma-Gamma spend model (clvmodel.models.gamma_gamma).

Sources (also in /work/shared/REFERENCE.md):
[FH13] Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": CDNOW's 946 repeat
       customers, p 6.25, q 3.74, gamma 15.44, LL -4055.92; equation (1a) likelihood, (5) E[M | x, m].
REFERENCE.md: frequency-spend correlation among repeat customers 0.1139 (computed from the summary).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from clvmodel.errors import ClvError
from clvmodel.models.gamma_gamma import CORRELATION_WARNING, GammaGammaModel, SpendCorrelationWarning


def gamma_gamma_log_likelihood(p, q, v, x, m) -> np.ndarray:
    """Per-customer ln L of the mean spend m over x transactions, equation (1a) of [FH13]."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    return (
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x)
    )


def _synthetic(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Repeat customers drawn from the Gamma-Gamma story with p = 6, q = 4, gamma = 15."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 9, n)
    nu = rng.gamma(4.0, 1 / 15.0, n)  # nu ~ Gamma(q, rate gamma)
    m = np.array([rng.gamma(6.0, 1 / nu_i, k).mean() for nu_i, k in zip(nu, x)])  # z ~ Gamma(p, rate nu)
    return pd.DataFrame({"frequency": x, "recency": 1.0, "T": 10.0, "monetary_value": m})


# --- CDNOW ------------------------------------------------------------------------------------


def test_cdnow_published_estimates(cdnow_gamma_gamma: GammaGammaModel) -> None:
    # [FH13]: p 6.25, q 3.74, gamma 15.44 (lifetimes calls gamma v), LL -4055.92, 946 customers.
    params = cdnow_gamma_gamma.params_
    assert list(params) == ["p", "q", "v"]
    assert params["p"] == pytest.approx(6.25, abs=0.005)
    assert params["q"] == pytest.approx(3.74, abs=0.005)
    assert params["v"] == pytest.approx(15.44, abs=0.005)
    assert cdnow_gamma_gamma.log_likelihood_ == pytest.approx(-4055.92, abs=0.005)
    assert cdnow_gamma_gamma.n_ == 946
    assert cdnow_gamma_gamma.excluded_ == 0


def test_cdnow_log_likelihood_is_the_sum_of_equation_1a(
    cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame
) -> None:
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    p, q, v = (cdnow_gamma_gamma.params_[k] for k in ("p", "q", "v"))
    total = gamma_gamma_log_likelihood(p, q, v, repeat["frequency"], repeat["monetary_value"]).sum()
    assert cdnow_gamma_gamma.log_likelihood_ == pytest.approx(total, rel=1e-10)


def test_cdnow_correlation(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    # REFERENCE.md: 0.1139 among repeat customers; below the warning threshold.
    assert cdnow_gamma_gamma.correlation_ == pytest.approx(0.1139, abs=5e-5)
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    assert cdnow_gamma_gamma.correlation_ == pytest.approx(repeat["frequency"].corr(repeat["monetary_value"]), rel=1e-12)
    assert abs(cdnow_gamma_gamma.correlation_) < CORRELATION_WARNING


def test_one_time_buyer_gets_the_population_mean(cdnow_gamma_gamma: GammaGammaModel) -> None:
    p, q, v = (cdnow_gamma_gamma.params_[k] for k in ("p", "q", "v"))
    assert cdnow_gamma_gamma.population_mean == pytest.approx(p * v / (q - 1), rel=1e-15)
    assert cdnow_gamma_gamma.population_mean == pytest.approx(35.17, abs=0.005)  # REFERENCE.md
    got = cdnow_gamma_gamma.expected_order_value(np.array([0.0, 0.0]), np.array([0.0, 123.0]))
    np.testing.assert_allclose(got, cdnow_gamma_gamma.population_mean, rtol=1e-15)


def test_expected_order_value_equation_5_by_hand() -> None:
    # [FH13] equation (5) at the published p 6.25, q 3.74, gamma 15.44, for x = 2, m = 50:
    # weight on m = p x / (p x + q - 1) = 12.5 / 15.24; population mean = 6.25 * 15.44 / 2.74 = 96.5 / 2.74;
    # E[M] = (2.74 / 15.24) (96.5 / 2.74) + (12.5 / 15.24) 50 = (96.5 + 625) / 15.24 = 721.5 / 15.24 = 47.3425.
    model = GammaGammaModel.from_dict({"params": {"p": 6.25, "q": 3.74, "v": 15.44}})
    assert model.expected_order_value(2.0, 50.0).item() == pytest.approx(721.5 / 15.24, rel=1e-12)
    assert model.population_mean == pytest.approx(96.5 / 2.74, rel=1e-12)


def test_expected_order_value_shrinks_towards_the_mean(cdnow_gamma_gamma: GammaGammaModel) -> None:
    mean = cdnow_gamma_gamma.population_mean
    x = np.arange(1.0, 31.0)
    for m in (5.0, 200.0):
        got = cdnow_gamma_gamma.expected_order_value(x, np.full_like(x, m))
        low, high = sorted((m, mean))
        assert ((got > low) & (got < high)).all()
        assert (np.abs(np.diff(got - m)) > 0).all() and (np.abs(got - m)[1:] < np.abs(got - m)[:-1]).all()


# --- fitting rules ----------------------------------------------------------------------------


def test_synthetic_fit_recovers_roughly_and_is_not_correlated() -> None:
    data = _synthetic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpendCorrelationWarning)
        model = GammaGammaModel().fit(data)
    assert model.n_ == 400
    # the population mean spend p gamma / (q - 1) = 6 * 15 / 3 = 30 is well identified
    assert model.population_mean == pytest.approx(30.0, rel=0.15)


def test_zero_spend_repeat_customers_are_excluded_and_counted() -> None:
    data = _synthetic()
    zero = pd.DataFrame({"frequency": [2, 3], "recency": 1.0, "T": 10.0, "monetary_value": [0.0, 0.0]})
    one_timers = pd.DataFrame({"frequency": [0, 0, 0], "recency": 0.0, "T": 10.0, "monetary_value": [0.0, 0.0, 0.0]})
    model = GammaGammaModel().fit(pd.concat([data, zero, one_timers], ignore_index=True))
    assert model.excluded_ == 2  # one-time buyers are not "excluded": they are never in the sample
    assert model.n_ == 400
    assert model.params_ == GammaGammaModel().fit(data).params_  # the same likelihood, the same optimum


def test_strong_correlation_warns() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(1, 15, 300).astype(float)
    data = pd.DataFrame({"frequency": x, "monetary_value": 5 * x + rng.gamma(5.0, 2.0, 300)})
    with pytest.warns(SpendCorrelationWarning, match=r"frequency and monetary value are correlated \(r = 0\.9\d\d\)"):
        model = GammaGammaModel().fit(data)
    assert model.correlation_ > CORRELATION_WARNING


@pytest.mark.parametrize(
    ("frequency", "monetary", "usable"),
    [([0, 0, 0], [0.0, 0.0, 0.0], 0), ([1, 2, 0], [10.0, 12.0, 0.0], 2), ([1, 2, 3], [10.0, 12.0, 0.0], 2)],
)
def test_too_few_repeat_customers(frequency, monetary, usable: int) -> None:
    data = pd.DataFrame({"frequency": frequency, "monetary_value": monetary})
    with pytest.raises(
        ClvError,
        match=rf"^gamma_gamma: {usable} repeat customers with positive spend; the spend model needs repeat buyers",
    ):
        GammaGammaModel().fit(data)


# --- state, errors ----------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    state = json.loads(json.dumps(cdnow_gamma_gamma.to_dict()))
    assert state["type"] == "gamma_gamma"
    assert state["correlation"] == cdnow_gamma_gamma.correlation_
    assert state["excluded"] == 0
    rebuilt = GammaGammaModel.from_dict(state)
    x, m = cdnow_summary["frequency"].to_numpy(float), cdnow_summary["monetary_value"].to_numpy(float)
    assert (rebuilt.expected_order_value(x, m) == cdnow_gamma_gamma.expected_order_value(x, m)).all()
    assert rebuilt.population_mean == cdnow_gamma_gamma.population_mean
    assert (rebuilt.correlation_, rebuilt.excluded_, rebuilt.n_) == (cdnow_gamma_gamma.correlation_, 0, 946)
    assert rebuilt.to_dict() == state


@pytest.mark.parametrize(
    "call",
    [lambda m: m.expected_order_value(1.0, 10.0), lambda m: m.population_mean, lambda m: m.to_dict()],
    ids=["expected_order_value", "population_mean", "to_dict"],
)
def test_unfitted_model(call) -> None:
    with pytest.raises(ClvError, match=r"^GammaGammaModel is not fitted; call fit\(\.\.\.\) or load a trained model"):
        call(GammaGammaModel())
