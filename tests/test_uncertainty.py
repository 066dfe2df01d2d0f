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


# --- the many-draw path equals the draw-by-draw one ---------------------------------------------------

import pytest  # noqa: E402

from clvmodel import clv as clv_module  # noqa: E402
from clvmodel import uncertainty  # noqa: E402
from clvmodel.models.gamma_gamma import GammaGammaModel  # noqa: E402
from clvmodel.models.mbgnbd import ModifiedBetaGeoModel  # noqa: E402
from clvmodel.models.pareto_nbd import ParetoNBDModel  # noqa: E402

#: Purchase parameters and log-scale covariances wide enough that the draws cross the branches of
#: the forecasts: BG/NBD's Euler and direct ₂F₁ (x ≥ a − 1 − r or not), Pareto/NBD's α < β and α ≥ β.
FAMILIES = {
    "bgnbd": (BetaGeoModel, {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, 0.04),
    "pareto_nbd": (ParetoNBDModel, {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}, 0.04),
    "mbgnbd": (ModifiedBetaGeoModel, {"r": 0.52, "alpha": 6.2, "a": 0.89, "b": 1.61}, 0.02),
}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.4}


def _with_covariance(cls, params: dict[str, float], variance: float, correlation: float = 0.3):
    k = len(params)
    cov = variance * ((1 - correlation) * np.eye(k) + correlation * np.ones((k, k)))
    return cls.from_dict({"params": params, "covariance_log_params": {"params": list(params), "matrix": cov.tolist()}})


def _model(family: str, *, spend: dict[str, float] | None = SPEND, spend_variance: float = 0.01) -> TrainedModel:
    cls, params, variance = FAMILIES[family]
    models = {family: _with_covariance(cls, params, variance)}
    if spend is not None:
        models["gamma_gamma"] = _with_covariance(GammaGammaModel, spend, spend_variance)
    return TrainedModel(name="t", time_unit="week", models=models, primary=family,
                        clv={"horizon": 39, "discount_rate": 0.01, "margin": 0.3}, segments=SEGMENTS,
                        columns={}, config={})


def _both(trained: TrainedModel, rows: pd.DataFrame, draws: int = 300, *, reset: bool = True,
          **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The many-draw intervals and the draw-by-draw ones (the implementation before, the oracle)."""
    filled = rows[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    filled = filled.reset_index(drop=True) if reset else filled
    point = clv_module.forecast(trained.purchase_model, trained.spend_model, filled, horizon=39,
                                discount_rate=0.01, margin=0.3)
    kw = dict(horizon=39, margin=0.3, level=0.9, draws=draws, seed=5)
    return (uncertainty.interval_columns(trained, filled, point, **kw, **options),
            uncertainty.interval_columns_by_draw(trained, filled, point, **kw))


def _simulated(n: int = 3000) -> pd.DataFrame:
    """BG/NBD customers with daily ages (T in days / 7, spread over a year) and Gamma amounts."""
    rng = np.random.default_rng(4)
    T = rng.integers(7, 365, n) / 7.0
    summary = simulate_summary(rng, TRUE, T)
    amounts = np.where(summary["frequency"] > 0, rng.gamma(4.0, 10.0, n).round(2), 0.0)
    return summary.assign(customer_id=np.arange(n).astype(str), monetary_value=amounts)


def _assert_equal(new: pd.DataFrame, old: pd.DataFrame, rtol: float = 1e-12) -> None:
    assert list(new.columns) == list(old.columns) and new.index.equals(old.index)
    np.testing.assert_array_equal(np.isnan(new.to_numpy()), np.isnan(old.to_numpy()))
    np.testing.assert_allclose(new.to_numpy(), old.to_numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_many_draws_equal_draw_by_draw_on_cdnow(family: str, cdnow_summary: pd.DataFrame) -> None:
    new, old = _both(_model(family), cdnow_summary)
    assert new.notna().all().all()
    _assert_equal(new, old)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_many_draws_equal_draw_by_draw_on_simulated_customers(family: str) -> None:
    new, old = _both(_model(family), _simulated(), draws=200)
    _assert_equal(new, old)


def test_pareto_nbd_draws_cross_alpha_equal_beta(cdnow_summary: pd.DataFrame) -> None:
    """The draws take both of lifetimes' branches (α < β and α ≥ β) in the same run."""
    draws = uncertainty.parameter_draws(_model("pareto_nbd").purchase_model, 300, 5)
    assert 0 < np.mean([d["alpha"] < d["beta"] for d in draws]) < 1


def test_without_spend_model_and_with_spend_draws_left_out(cdnow_summary: pd.DataFrame) -> None:
    """No spend model (point order values), and spend draws with q <= 1 (no finite mean: left out)."""
    _assert_equal(*_both(_model("bgnbd", spend=None), cdnow_summary))
    loose = _model("pareto_nbd", spend={"p": 6.0, "q": 1.3, "v": 15.0}, spend_variance=0.3)
    q = np.array([d["q"] for d in uncertainty.parameter_draws(loose.spend_model, 300, 6)])
    assert 0 < np.mean(q <= 1) < 0.5  # some draws are left out
    new, old = _both(loose, cdnow_summary)
    assert new.notna().all().all()
    _assert_equal(new, old)


def test_result_does_not_depend_on_chunk_size(cdnow_summary: pd.DataFrame) -> None:
    """Blocks and tiles of 1 to 10,000 rows (customers of one row split across tiles) give the default's bits."""
    data = pd.concat([cdnow_summary] * 3, ignore_index=True)  # every row many customers
    data["customer_id"] = np.arange(len(data)).astype(str)
    for family in ("bgnbd", "pareto_nbd"):
        trained = _model(family)
        reference, _ = _both(trained, data, draws=50)
        for chunk, tile in ((1, 1), (7, 3), (64, 64), (500, 7), (10_000, 1000)):
            pd.testing.assert_frame_equal(_both(trained, data, draws=50, chunk=chunk, tile=tile)[0], reference)


def test_shapes_and_order(cdnow_summary: pd.DataFrame) -> None:
    """One row per input customer in input order (on the input's own index), duplicates included; lower <= upper."""
    rows = cdnow_summary.sample(frac=1.0, random_state=1).iloc[:500]
    rows = pd.concat([rows, rows.iloc[:50]], ignore_index=True)
    rows.index = np.arange(len(rows))[::-1] * 3 + 10
    new, old = _both(_model("bgnbd"), rows, draws=100, reset=False)
    assert new.index.equals(rows.index)
    assert new.shape == (550, 4) and list(new.columns) == [
        "expected_purchases_lower", "expected_purchases_upper", "predicted_clv_lower", "predicted_clv_upper"]
    _assert_equal(new, old)
    np.testing.assert_array_equal(new.iloc[500:].to_numpy(), new.iloc[:50].to_numpy())
    assert (new["expected_purchases_lower"] <= new["expected_purchases_upper"]).all()
    assert (new["predicted_clv_lower"] <= new["predicted_clv_upper"]).all()


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("draws", [1, 2, 7, 1000])
def test_row_quantiles_are_numpys_to_the_bit(level: float, draws: int) -> None:
    rng = np.random.default_rng(draws)
    matrix = rng.lognormal(size=(300, draws))
    matrix[5, 0] = np.nan  # a row with NaN: NaN, as np.quantile
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    np.testing.assert_array_equal(uncertainty._row_quantiles(matrix, quantiles), np.quantile(matrix, quantiles, axis=1).T)


def test_pareto_nbd_on_its_ridge_equals_draw_by_draw(cdnow_summary: pd.DataFrame) -> None:
    """A Pareto/NBD fitted on its ridge (s = 1e8): every draw takes the adapter's limit forms."""
    params = {"r": 0.55, "alpha": 10.6, "s": 1e8, "beta": 1e8 / 0.05}
    cov = np.diag([0.01, 0.01, 0.0, 0.01])
    model = ParetoNBDModel.from_dict({"params": params, "covariance_log_params": {"params": list(params), "matrix": cov.tolist()}})
    trained = _model("pareto_nbd")
    trained.models["pareto_nbd"] = model
    new, old = _both(trained, cdnow_summary.iloc[:400], draws=60, chunk=50, tile=16)
    assert new.notna().all().all()
    _assert_equal(new, old)


def test_pareto_nbd_where_lifetimes_form_is_nan_equals_draw_by_draw(cdnow_summary: pd.DataFrame) -> None:
    """s in the hundreds, where lifetimes' ₂F₁ form of P(alive) loses digits (or is NaN): draw by draw."""
    params = {"r": 0.55, "alpha": 10.6, "s": 400.0, "beta": 400.0 / 0.05}
    cov = np.diag([0.01, 0.01, 0.01, 0.01])
    model = ParetoNBDModel.from_dict({"params": params, "covariance_log_params": {"params": list(params), "matrix": cov.tolist()}})
    rows = cdnow_summary.iloc[:300]
    trained = _model("pareto_nbd")
    trained.models["pareto_nbd"] = model
    new, old = _both(trained, rows, draws=40)
    assert new.notna().all().all()
    _assert_equal(new, old)


def test_result_does_not_depend_on_threads(cdnow_summary: pd.DataFrame) -> None:
    """Blocks of 100 rows run in one thread or in three (in any order) give the same bits."""
    for family in ("bgnbd", "pareto_nbd"):
        trained = _model(family)
        one, old = _both(trained, cdnow_summary, draws=50, chunk=100, tile=16, workers=1)
        three, _ = _both(trained, cdnow_summary, draws=50, chunk=100, tile=16, workers=3)
        pd.testing.assert_frame_equal(three, one)
        _assert_equal(three, old)


def test_customers_ranked_once_only_when_their_clv_inputs_are_equal(cdnow_summary: pd.DataFrame) -> None:
    """Customers of one (x, t_x, T) row share their CLV draws only with equal mean spend, point order
    value and timing share: copies of CDNOW's customers with another m̄, another timing (a point CLV
    discounted differently) or both, each against the draw-by-draw path."""
    base = cdnow_summary[RFM].iloc[:400].reset_index(drop=True)
    spend = base.assign(monetary_value=base["monetary_value"] * 1.5 + 1.0)
    rows = pd.concat([base, spend, base, spend], ignore_index=True)
    rows["customer_id"] = np.arange(len(rows)).astype(str)
    for family in ("bgnbd", "pareto_nbd"):
        trained = _model(family)
        point = clv_module.forecast(trained.purchase_model, trained.spend_model, rows, horizon=39,
                                    discount_rate=0.01, margin=0.3)
        point.loc[800:, "predicted_clv"] *= 0.8  # the last two copies: another timing share
        kw = dict(horizon=39, margin=0.3, level=0.9, draws=100, seed=5)
        new = uncertainty.interval_columns(trained, rows, point, **kw)
        _assert_equal(new, uncertainty.interval_columns_by_draw(trained, rows, point, **kw))
        clv = new["predicted_clv_upper"].to_numpy()
        repeat = base["frequency"].to_numpy() > 0
        assert np.all(clv[:400][repeat] != clv[400:800][repeat])  # m̄ differs: other draws
        np.testing.assert_allclose(clv[800:1200], clv[:400] * 0.8, rtol=1e-12)  # timing scales the draws
