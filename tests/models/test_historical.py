"""Tests for the historical CLV formula (clvmodel.models.historical), computed by hand.

The table (time unit: any; T̄ = mean age, ρ = share of repeat customers):

    customer  x   T     m     rate x / max(T, 1)   AOV
    c1        2   10    30    0.2                  30
    c2        1   0.5   12    1.0  (T floored at 1) 12
    c3        0   4     0     0                    21 = mean repeat spend (30 + 12) / 2
    c4        0   5.5   0     0                    21

ρ = 2/4 = 0.5, T̄ = (10 + 0.5 + 4 + 5.5) / 4 = 5, L = T̄ / (1 − ρ) = 10.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clvmodel.errors import ClvError
from clvmodel.models.historical import HistoricalModel, annuity

TABLE = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4"],
        "frequency": [2, 1, 0, 0],
        "recency": [8.0, 0.5, 0.0, 0.0],
        "T": [10.0, 0.5, 4.0, 5.5],
        "monetary_value": [30.0, 12.0, 0.0, 0.0],
    }
)
X, T, M = (TABLE[c].to_numpy(dtype=float) for c in ("frequency", "T", "monetary_value"))


def _fitted(**options) -> HistoricalModel:
    return HistoricalModel(**options).fit(TABLE)


def test_fit_by_hand() -> None:
    model = _fitted()
    assert model.params_ == {"retention_periods": 10.0, "repeat_rate": 0.5, "mean_age": 5.0, "mean_order_value": 21.0}
    assert model.n_ == 4
    assert model.standard_errors_ == {}


def test_rate_and_order_value_by_hand() -> None:
    model = _fitted()
    np.testing.assert_array_equal(model.purchase_rate(X, T), [0.2, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(model.order_value(X, M), [30.0, 12.0, 21.0, 21.0])


def test_expected_purchases_by_hand() -> None:
    model = _fitted()
    np.testing.assert_allclose(model.expected_purchases(X, X, T, t=3), [0.6, 3.0, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(model.expected_purchases(X, X, T, t=20), [2.0, 10.0, 0.0, 0.0], rtol=1e-15)  # min(L, t) = 10


def test_clv_without_discount() -> None:
    model = _fitted()
    # AOV x rate x min(L, H): c1 30 x 0.2 x 10 = 60; c2 12 x 1.0 x 10 = 120; one-time buyers have rate 0.
    np.testing.assert_allclose(model.clv(X, T, M, horizon=52), [60.0, 120.0, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(model.clv(X, T, M, horizon=52, margin=0.5), [30.0, 60.0, 0.0, 0.0], rtol=1e-15)
    # H = 4.5 < L: c1 30 x 0.2 x 4.5 = 27
    np.testing.assert_allclose(model.clv(X, T, M, horizon=4.5), [27.0, 54.0, 0.0, 0.0], rtol=1e-15)


def test_clv_with_discount() -> None:
    model = _fitted()
    # H = 4.5, d = 10 %: A = 1/1.1 + 1/1.1^2 + 1/1.1^3 + 1/1.1^4 + 0.5/1.1^5 = 3.4803...
    a = 1 / 1.1 + 1 / 1.1**2 + 1 / 1.1**3 + 1 / 1.1**4 + 0.5 / 1.1**5
    assert a == pytest.approx(3.480326, abs=1e-6)
    np.testing.assert_allclose(model.clv(X, T, M, horizon=4.5, discount_rate=0.1), [6 * a, 12 * a, 0, 0], rtol=1e-12)
    # H = 52 > L = 10: ten whole periods, A = (1 - 1.1^-10) / 0.1 = 6.144567
    a10 = (1 - 1.1**-10) / 0.1
    assert a10 == pytest.approx(6.144567, abs=1e-6)
    np.testing.assert_allclose(model.clv(X, T, M, horizon=52, discount_rate=0.1), [6 * a10, 12 * a10, 0, 0], rtol=1e-12)


def test_annuity() -> None:
    assert annuity(0.0, 0.1) == 0.0
    assert annuity(2.5, 0.0) == 2.5
    assert annuity(2.5, 0.1) == pytest.approx(1 / 1.1 + 1 / 1.21 + 0.5 / 1.331, rel=1e-15)
    assert annuity(0.25, 0.2) == pytest.approx(0.25 / 1.2, rel=1e-15)
    # decreasing in the rate, increasing in the periods
    assert annuity(10, 0.05) > annuity(10, 0.1) > annuity(9.5, 0.1)


def test_configured_retention_is_used_as_is() -> None:
    model = _fitted(retention_periods=3.0)
    assert model.params_["retention_periods"] == 3.0
    assert (model.params_["repeat_rate"], model.params_["mean_age"]) == (0.5, 5.0)  # still estimated
    np.testing.assert_allclose(model.clv(X, T, M, horizon=52), [18.0, 36.0, 0.0, 0.0], rtol=1e-15)
    # a retention period beyond the horizon is cut at the horizon
    np.testing.assert_allclose(_fitted(retention_periods=100.0).clv(X, T, M, horizon=4.5), [27.0, 54.0, 0, 0], rtol=1e-15)


def test_all_repeat_customers_need_a_configured_retention() -> None:
    repeaters = TABLE.assign(frequency=[2, 1, 1, 3], monetary_value=[30.0, 12.0, 5.0, 1.0])
    with pytest.raises(
        ClvError,
        match=r"^historical: every customer repeated, so the derived retention period is infinite; "
        r"set historical\.retention_periods$",
    ):
        HistoricalModel().fit(repeaters)
    assert HistoricalModel(retention_periods=8.0).fit(repeaters).params_["repeat_rate"] == 1.0


def test_no_repeat_customer() -> None:
    one_timers = TABLE.assign(frequency=0, monetary_value=0.0)
    model = HistoricalModel().fit(one_timers)
    assert model.params_ == {"retention_periods": 5.0, "repeat_rate": 0.0, "mean_age": 5.0, "mean_order_value": 0.0}
    np.testing.assert_array_equal(model.clv(X * 0, T, M * 0, horizon=52), [0.0] * 4)


def test_no_customers() -> None:
    with pytest.raises(ClvError, match=r"^historical: no customers to fit; check the calibration period$"):
        HistoricalModel().fit(TABLE.iloc[:0])


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.order_value(X, M),
        lambda m: m.expected_purchases(X, X, T, t=3),
        lambda m: m.clv(X, T, M, horizon=3),
        lambda m: m.to_dict(),
    ],
    ids=["order_value", "expected_purchases", "clv", "to_dict"],
)
def test_unfitted_model(call) -> None:
    with pytest.raises(ClvError, match=r"^HistoricalModel is not fitted; call fit\(\.\.\.\) or load a trained model"):
        call(HistoricalModel())


def test_to_dict_from_dict_round_trip() -> None:
    model = _fitted(retention_periods=7.5)
    state = json.loads(json.dumps(model.to_dict()))
    assert state["type"] == "historical"
    assert state["params"]["retention_periods"] == 7.5
    rebuilt = HistoricalModel.from_dict(state)
    for kwargs in ({"horizon": 52}, {"horizon": 4.5, "discount_rate": 0.1, "margin": 0.3}):
        assert (rebuilt.clv(X, T, M, **kwargs) == model.clv(X, T, M, **kwargs)).all()
    assert (rebuilt.order_value(X, M) == model.order_value(X, M)).all()
    assert rebuilt.to_dict() == state
