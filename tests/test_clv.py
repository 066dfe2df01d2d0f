"""Tests for clvmodel.clv: purchase model + spend model -> discounted CLV per customer.

Sources: R BTYD walkthrough (BG/NBD at r 0.2425982, alpha 4.4136842, a 0.7929899, b 2.4261667:
customer x=26, t_x=30.85714, T=31 has E[Y(52)] 25.75659, P(alive) 0.9688523; the CDNOW holdout
forecast totals ~1,653), Fader & Hardie (2013) equation (5) for E[M | x, m]. See REFERENCE.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.clv import discount_factors, distinct_pairs, forecast
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.gamma_gamma import GammaGammaModel

BGNBD_BTYD = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}
GG_PUBLISHED = {"p": 6.25, "q": 3.74, "v": 15.44}
COLUMNS = ["p_alive", "expected_purchases", "expected_order_value", "predicted_clv"]


@pytest.fixture(scope="module")
def sample(cdnow_summary: pd.DataFrame) -> pd.DataFrame:
    """300 CDNOW customers (many with identical (x, t_x, T) rows) under a non-default index."""
    rows = cdnow_summary.iloc[::8].head(300).copy()
    rows.index = pd.Index([f"row{i}" for i in range(len(rows))], name="key")
    assert rows.duplicated(["frequency", "recency", "T"]).sum() > 50  # collapsing has work to do
    assert (rows["frequency"] > 0).sum() > 50
    return rows


def _rfm(frame: pd.DataFrame):
    return tuple(frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))


def test_discount_factors() -> None:
    np.testing.assert_allclose(discount_factors(3, 0.1), [1 / 1.1, 1 / 1.21, 1 / 1.331], rtol=1e-15)
    np.testing.assert_array_equal(discount_factors(4, 0.0), [1.0, 1.0, 1.0, 1.0])


def test_published_customer_by_hand() -> None:
    purchases = BetaGeoModel.from_dict({"params": BGNBD_BTYD})
    spend = GammaGammaModel.from_dict({"params": GG_PUBLISHED})
    summary = pd.DataFrame(
        {"frequency": [26, 0], "recency": [30.85714, 0.0], "T": [31.0, 31.0], "monetary_value": [50.0, 0.0]}
    )
    out = forecast(purchases, spend, summary, horizon=52)
    # R BTYD walkthrough: E[Y(52)] = 25.75659, P(alive) = 0.9688523 for x = 26, t_x = 30.85714, T = 31.
    assert out.loc[0, "expected_purchases"] == pytest.approx(25.75659, abs=1e-4)
    assert out.loc[0, "p_alive"] == pytest.approx(0.9688523, abs=1e-6)
    assert out.loc[1, "p_alive"] == 1.0
    # Equation (5): (q - 1)/(p x + q - 1) * p v/(q - 1) + p x/(p x + q - 1) * m = (96.5 + 162.5 * 50) / 165.24
    assert out.loc[0, "expected_order_value"] == pytest.approx(8221.5 / 165.24, rel=1e-12)
    assert out.loc[1, "expected_order_value"] == pytest.approx(96.5 / 2.74, rel=1e-12)  # population mean
    assert out.loc[0, "predicted_clv"] == pytest.approx(25.75659 * 8221.5 / 165.24, rel=1e-5)


def test_no_discount_is_margin_times_order_value_times_purchases(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=39, margin=0.4)
    assert list(out.columns) == COLUMNS
    assert out.index.equals(sample.index)
    np.testing.assert_allclose(
        out["predicted_clv"], 0.4 * out["expected_order_value"] * out["expected_purchases"], rtol=1e-12, atol=1e-12
    )
    x, tx, T = _rfm(sample)
    np.testing.assert_allclose(out["expected_purchases"], cdnow_bgnbd.expected_purchases(x, tx, T, t=39), rtol=1e-12)
    np.testing.assert_allclose(out["p_alive"], cdnow_bgnbd.p_alive(x, tx, T), rtol=1e-15)
    np.testing.assert_allclose(
        out["expected_order_value"], cdnow_gamma_gamma.expected_order_value(x, sample["monetary_value"]), rtol=1e-15
    )


def _hand_discounted(model, summary: pd.DataFrame, horizon: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k (E[Y(k)] − E[Y(k−1)]) / (1 + d)^k, one period at a time; also the per-period terms."""
    x, tx, T = _rfm(summary)
    previous = np.zeros(len(summary))
    terms = []
    for k in range(1, horizon + 1):
        current = model.expected_purchases(x, tx, T, t=float(k))
        terms.append((current - previous) / (1 + rate) ** k)
        previous = current
    terms = np.array(terms).T
    return terms.sum(axis=1), terms


def test_discounted_value_equals_a_hand_loop(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    horizon, rate, margin = 26, 0.01, 0.3
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=horizon, discount_rate=rate, margin=margin)
    discounted, _ = _hand_discounted(cdnow_bgnbd, sample, horizon, rate)
    np.testing.assert_allclose(
        out["predicted_clv"], margin * out["expected_order_value"] * discounted, rtol=1e-10, atol=1e-12
    )
    assert (out["predicted_clv"] <= margin * out["expected_order_value"] * out["expected_purchases"] + 1e-12).all()


def test_per_period_columns(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    horizon, rate = 12, 0.02
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=horizon, discount_rate=rate, per_period=True)
    periods = [f"period_{k}" for k in range(1, horizon + 1)]
    assert list(out.columns) == COLUMNS + periods
    np.testing.assert_allclose(out[periods].sum(axis=1), out["predicted_clv"], rtol=1e-12, atol=1e-12)
    _, terms = _hand_discounted(cdnow_bgnbd, sample, horizon, rate)
    np.testing.assert_allclose(
        out[periods].to_numpy(), out["expected_order_value"].to_numpy()[:, None] * terms, rtol=1e-10, atol=1e-12
    )
    assert (out[periods].to_numpy() >= -1e-12).all()
    plain = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=horizon, discount_rate=rate)
    pd.testing.assert_frame_equal(out[COLUMNS], plain)


def test_monotone_in_horizon(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    values = [
        forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=h, discount_rate=0.01)["predicted_clv"].to_numpy()
        for h in (1, 5, 13, 39, 78)
    ]
    for shorter, longer in zip(values, values[1:]):
        assert (longer >= shorter - 1e-12).all()
    assert (values[-1] > values[0]).any()


def test_decreasing_in_discount_rate(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    values = [
        forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=39, discount_rate=d)["predicted_clv"].to_numpy()
        for d in (0.0, 0.005, 0.02, 0.1)
    ]
    positive = values[0] > 0
    assert positive.all()  # every customer has some expected purchase and a positive order value
    for lower, higher in zip(values, values[1:]):
        assert (higher < lower).all()


def test_linear_in_margin(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    full = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=39, discount_rate=0.01)
    for margin in (0.25, 0.6):
        part = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=39, discount_rate=0.01, margin=margin)
        np.testing.assert_allclose(part["predicted_clv"], margin * full["predicted_clv"], rtol=1e-12)
        pd.testing.assert_frame_equal(part.drop(columns="predicted_clv"), full.drop(columns="predicted_clv"))


def test_collapsed_computation_equals_row_by_row(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    rows = sample.head(40)
    together = forecast(cdnow_bgnbd, cdnow_gamma_gamma, rows, horizon=13, discount_rate=0.01, per_period=True)
    one_by_one = pd.concat(
        [
            forecast(cdnow_bgnbd, cdnow_gamma_gamma, rows.iloc[[i]], horizon=13, discount_rate=0.01, per_period=True)
            for i in range(len(rows))
        ]
    )
    pd.testing.assert_frame_equal(together, one_by_one, check_exact=False, rtol=1e-12, atol=1e-14)


def test_row_order_does_not_matter(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, sample, horizon=39, discount_rate=0.01)
    shuffled = sample.sample(frac=1.0, random_state=11)
    again = forecast(cdnow_bgnbd, cdnow_gamma_gamma, shuffled, horizon=39, discount_rate=0.01)
    pd.testing.assert_frame_equal(again.loc[out.index], out, check_exact=False, rtol=1e-12, atol=1e-14)


def test_without_spend_model_order_value_is_observed_mean(cdnow_bgnbd, sample) -> None:
    out = forecast(cdnow_bgnbd, None, sample, horizon=39)
    np.testing.assert_array_equal(out["expected_order_value"], sample["monetary_value"].to_numpy())
    assert (out.loc[sample["frequency"] == 0, "predicted_clv"] == 0).all()
    np.testing.assert_allclose(
        out["predicted_clv"], sample["monetary_value"].to_numpy() * out["expected_purchases"], rtol=1e-12, atol=1e-12
    )


def test_cdnow_holdout_forecast_total(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_summary) -> None:
    # R BTYD walkthrough tables: Σ E[Y(39)] over CDNOW's 2,357 customers ≈ 1,653 (actual 1,882).
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_summary, horizon=39)
    assert len(out) == 2357
    assert out["expected_purchases"].sum() == pytest.approx(1653, abs=1.0)
    assert (out["predicted_clv"] > 0).all()


def _whole_matrix(purchases, spend, summary: pd.DataFrame, horizon: int, rate: float, margin: float):
    """The (H + 1) × n matrix of E[Y(k)] per customer, differenced and discounted: the reference formula."""
    x, tx, T = _rfm(summary)
    cumulative = purchases.expected_purchases(x, tx, T, t=np.arange(0, horizon + 1, dtype=float)[:, None])
    cumulative[0] = 0.0
    increments = np.diff(cumulative, axis=0) * discount_factors(horizon, rate)[:, None]
    order_value = spend.expected_order_value(x, summary["monetary_value"].to_numpy())
    return cumulative[-1], margin * order_value * increments.sum(axis=0), margin * order_value[:, None] * increments.T


@pytest.mark.parametrize(("horizon", "rate"), [(12, 0.01), (1, 0.0), (52, 0.002)])
def test_per_pair_discounting_equals_the_whole_matrix(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_summary, horizon, rate):
    """E[Y(H)] and P(alive) to the bit; the discounted sum, formed per (x, T) and scaled by P(alive), to rounding."""
    out = forecast(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_summary, horizon=horizon, discount_rate=rate, margin=0.3,
                   per_period=True)
    expected, clv, periods = _whole_matrix(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_summary, horizon, rate, 0.3)
    np.testing.assert_array_equal(out["expected_purchases"], expected)
    np.testing.assert_array_equal(out["p_alive"], cdnow_bgnbd.p_alive(*_rfm(cdnow_summary)))
    np.testing.assert_allclose(out["predicted_clv"], clv, rtol=1e-13, atol=0)
    np.testing.assert_allclose(out[[f"period_{k}" for k in range(1, horizon + 1)]], periods, rtol=1e-13, atol=1e-300)


def test_a_model_with_its_own_expected_purchases_is_asked_for_them(cdnow_gamma_gamma, sample) -> None:
    class Doubled(BetaGeoModel):
        factorised = False  # declared: not P(alive) x E[Y | alive]

        def expected_purchases(self, frequency, recency, T, *, t):
            return 2 * super().expected_purchases(frequency, recency, T, t=t)

    plain = BetaGeoModel.from_dict({"params": BGNBD_BTYD})
    doubled = Doubled.from_dict({"params": BGNBD_BTYD})
    one = forecast(plain, cdnow_gamma_gamma, sample, horizon=13, discount_rate=0.01, per_period=True)
    two = forecast(doubled, cdnow_gamma_gamma, sample, horizon=13, discount_rate=0.01, per_period=True)
    np.testing.assert_array_equal(two["expected_purchases"], 2 * one["expected_purchases"])
    scaled = [c for c in one.columns if c == "predicted_clv" or c.startswith("period_")]
    np.testing.assert_allclose(two[scaled], 2 * one[scaled], rtol=1e-13)


@pytest.mark.parametrize(
    ("x", "T"),
    [
        ([0.0, 2.0, 2.0, 0.0, 2.0], [5.0, 5.0, 5.0, 5.0, 3.5]),  # whole counts: coded directly
        ([0.5, 2.0, 0.5, np.nan, np.nan], [1.0, np.nan, 1.0, 2.0, 2.0]),  # fractions and missing values
        ([3e6, 1.0, 3e6, 1.0], [1.0, 2.0, 1.0, 2.0]),  # a large count: hashed, not tabled
    ],
)
def test_distinct_pairs_rebuild_every_row(x, T) -> None:
    x, T = np.array(x), np.array(T)
    pair_x, pair_T, pair_of_row = distinct_pairs(x, T)
    np.testing.assert_array_equal(pair_x[pair_of_row], x)
    np.testing.assert_array_equal(pair_T[pair_of_row], T)
    assert len(pair_x) == len(pd.DataFrame({"x": x, "T": T}).drop_duplicates())


def test_a_customer_scores_the_same_alone_or_in_a_batch(cdnow_bgnbd, cdnow_gamma_gamma, sample) -> None:
    """To the bit: batches (streamed and Spark scoring) must not change a customer's value through its neighbours."""
    rows = sample.head(60)
    together = forecast(cdnow_bgnbd, cdnow_gamma_gamma, rows, horizon=13, discount_rate=0.01, per_period=True)
    for i in range(len(rows)):
        alone = forecast(cdnow_bgnbd, cdnow_gamma_gamma, rows.iloc[[i]], horizon=13, discount_rate=0.01, per_period=True)
        pd.testing.assert_frame_equal(alone, together.iloc[[i]], check_exact=True)
