"""Parametric-bootstrap intervals: shape, ordering, determinism, and coverage on simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodel.artifact import TrainedModel
from clvmodel.models import BetaGeoModel
from clvmodel.models.bgnbd_simulate import simulate_summary
from clvmodel.predict import score
from clvmodel.uncertainty import parameter_draws

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
RFM = ["customer_id", "frequency", "recency", "T", "monetary_value"]
SEGMENTS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}


def simulate_bgnbd(params: dict[str, float], n: int, T: float, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` BG/NBD customers observed for ``T`` periods (:mod:`clvmodel.models.bgnbd_simulate`), as RFM rows."""
    summary = simulate_summary(rng, params, np.full(n, T))
    return summary.assign(customer_id=np.arange(n).astype(str), monetary_value=0.0)[RFM]


def _trained(model: BetaGeoModel, draws: int = 400) -> TrainedModel:
    return TrainedModel(name="sim", time_unit="week", models={"bgnbd": model}, primary="bgnbd",
                        clv={"horizon": 39, "discount_rate": 0.0, "margin": 1.0}, segments=SEGMENTS,
                        columns={}, config={"intervals": {"level": 0.9, "draws": draws, "seed": 7}})


def test_draws_are_seeded_and_centred():
    model = BetaGeoModel.from_dict(
        {"params": TRUE, "covariance_log_params": {"params": list(TRUE), "matrix": (np.eye(4) * 0.01).tolist()}}
    )
    first, second = parameter_draws(model, 2000, 3), parameter_draws(model, 2000, 3)
    assert first == second
    logs = np.log([[d[k] for k in TRUE] for d in first])
    np.testing.assert_allclose(logs.mean(axis=0), np.log(list(TRUE.values())), atol=0.01)
    np.testing.assert_allclose(logs.std(axis=0), 0.1, rtol=0.05)
    assert parameter_draws(BetaGeoModel.from_dict({"params": TRUE}), 10, 0) is None


def test_covariance_follows_its_parameter_names_through_json():
    """A saved model's JSON sorts keys; the covariance must be re-ordered with the parameters."""
    cov = np.array([[4.0, 1.0, 0.0, 0.0], [1.0, 9.0, 0.0, 0.0], [0.0, 0.0, 16.0, 2.0], [0.0, 0.0, 2.0, 25.0]]) * 1e-4
    model = BetaGeoModel.from_dict({"params": TRUE, "covariance_log_params": {"params": list(TRUE), "matrix": cov.tolist()}})
    state = model.to_dict()
    shuffled = {**state, "params": dict(sorted(state["params"].items()))}  # a, alpha, b, r
    rebuilt = BetaGeoModel.from_dict(shuffled)
    assert list(rebuilt.params_) == ["a", "alpha", "b", "r"]
    expected = cov[np.ix_([2, 1, 3, 0], [2, 1, 3, 0])]
    np.testing.assert_array_equal(np.array(rebuilt.covariance_), expected)
    assert parameter_draws(rebuilt, 50, 1) == parameter_draws(model, 50, 1)


def test_interval_columns_bracket_the_point_forecast():
    rng = np.random.default_rng(11)
    data = simulate_bgnbd(TRUE, 3000, 39.0, rng)
    trained = _trained(BetaGeoModel().fit(data))
    out = score(trained, data)
    assert (out["expected_purchases_lower"] <= out["expected_purchases"]).all()
    assert (out["expected_purchases"] <= out["expected_purchases_upper"]).all()
    assert (out["predicted_clv_lower"] <= out["predicted_clv_upper"]).all()
    narrower = score(trained, data, interval_level=0.5)
    assert (narrower["expected_purchases_upper"] <= out["expected_purchases_upper"]).all()
    assert "expected_purchases_lower" not in score(trained, data, interval_draws=0)
    pd.testing.assert_frame_equal(out, score(trained, data))  # seeded: identical twice


def test_coverage_close_to_nominal_on_simulated_data():
    """90 % intervals for a customer's E[Y(39)] contain the value under the true parameters in
    about 90 % of 80 simulated data sets (binomial sd 3.4 points; bounds are about ±3 sd)."""
    rng = np.random.default_rng(2026)
    probe = pd.DataFrame({"customer_id": ["p"], "frequency": [3.0], "recency": [30.0], "T": [39.0],
                          "monetary_value": [0.0]})
    truth = BetaGeoModel.from_dict({"params": TRUE}).expected_purchases(
        np.array([3.0]), np.array([30.0]), np.array([39.0]), t=39.0)[0]
    hits = []
    for _ in range(80):
        fitted = BetaGeoModel().fit(simulate_bgnbd(TRUE, 1500, 39.0, rng))
        row = score(_trained(fitted, draws=200), probe).iloc[0]
        hits.append(row["expected_purchases_lower"] <= truth <= row["expected_purchases_upper"])
    coverage = float(np.mean(hits))
    assert 0.8 <= coverage <= 0.99, coverage
