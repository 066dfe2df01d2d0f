"""Tests for clvmodel.models.bgnbd_forecast, the BG/NBD forecasts without lifetimes.

Sources:
[FHL05] Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2):
        equation (9) E[X(t)], equation (10) E[Y(t) | x, t_x, T].
[N021]  Fader, Hardie & Lee (2008), note 021, "Computing P(alive) using the BG/NBD model".
[LTF]   lifetimes 0.11.3 ``BetaGeoFitter`` (``conditional_probability_alive``,
        ``conditional_expected_number_of_purchases_up_to_time``,
        ``expected_number_of_purchases_up_to_time``): the oracle, rebuilt from parameters by
        ``lifetimes_adapter.fitter_from_params("bgnbd", params)``.
[SER]   Equation (10)'s numerator summed term by term as written (the ₂F₁ series, no transformation)
        in 40-digit decimal arithmetic: the reference where lifetimes' double precision runs out.
[EUL]   The same numerator with ₂F₁ through Euler's transformation, (1−z)^(a−1) ₂F₁(a+b−1−r, a−1;
        a+b+x−1; z), summed the same way: for frequent buyers that series converges in a few
        terms even as z → 1, where [SER] would need millions (checked against [SER] where both run).
[BTYD]  The R BTYD package walkthrough: CDNOW, sum of E[Y(39)] over the 2,357 customers ~ 1,653.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from clvmodel.models import bgnbd_forecast, lifetimes_adapter
from clvmodel.models.bgnbd import BetaGeoModel

# [FHL05] CDNOW estimates at full precision (a < 1 + r: the Euler-transformed ₂F₁ throughout) and a
# variant with a > 1 + r (the direct ₂F₁ for x = 0, 1, 2; E[Y(t)] bounded by (a+b+x−1)/(a−1)).
FULL = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}
A_ABOVE_ONE = {**FULL, "a": 3.5}
PARAMETER_SETS = {"cdnow": FULL, "a>1": A_ABOVE_ONE}

# Tolerances, each a little above the largest relative difference measured (in brackets).
P_ALIVE_RTOL = 2e-13  # against [LTF]: CDNOW [2.2e-15], grid [1.1e-13] (ln((α+T)/(α+t_x)) taken two ways)
CDNOW_RTOL = 2e-12  # E[Y(t)] against [LTF] on CDNOW, t = 1 ... 365 weeks [1.1e-12, at t = 1: 1 − (…) cancels]
NEW_RTOL = 1e-11  # E[X(t)] against [LTF], t = 0.01 ... 1e5 [6.1e-12]
# E[Y(t)] against [LTF] on the grid [1.7e-10]. Beyond ~1e-11 the differences are lifetimes' own error:
# its ln(1 − z) after forming z loses ~x·1e-16/(1 − z) (x = 2000, z = 0.9987: 1.7e-10), where ours is
# within 1e-15 of [EUL] (test_frequent_buyers_near_z_1_equal_euler_series).
GRID_RTOL = 2.5e-10
SERIES_RTOL = 1e-13  # E[Y(t) | alive] against [SER] and [EUL] [measured at most 2.6e-14]


def _lifetimes(params: dict[str, float]):
    return lifetimes_adapter.fitter_from_params("bgnbd", params)


def _lifetimes_p_alive(params, x, tx, T) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(_lifetimes(params).conditional_probability_alive(x, tx, T), dtype=float)


def _lifetimes_expected(params, t, x, tx, T) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected = _lifetimes(params).conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
        return np.asarray(expected, dtype=float)


def _rfm(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))  # type: ignore[return-value]


def series_expected_if_alive(params: dict[str, float], x: float, T: float, t: float) -> float:
    """[SER]: (a+b+x−1)/(a−1) [1 − ((α+T)/(α+T+t))^(r+x) Σ_n (r+x)_n (b+x)_n / ((a+b+x−1)_n n!) z^n]."""
    with localcontext() as context:
        context.prec = 40
        r, alpha, a, b = (Decimal(repr(float(params[k]))) for k in ("r", "alpha", "a", "b"))
        x_, T_, t_ = (Decimal(repr(float(v))) for v in (x, T, t))
        A, B, C = r + x_, b + x_, a + b + x_ - 1
        z = t_ / (alpha + T_ + t_)
        total = term = Decimal(1)
        n = 0
        while True:  # stop once the terms shrink for good and fall below 1e-36 of the sum
            term *= (A + n) * (B + n) / ((C + n) * (n + 1)) * z
            total += term
            n += 1
            if abs(term) < abs(total) * Decimal(10) ** -36 and abs((A + n) * (B + n) * z) < abs((C + n) * (n + 1)):
                break
        power = (A * ((alpha + T_) / (alpha + T_ + t_)).ln()).exp()
        return float(C / (a - 1) * (1 - power * total))


# --- CDNOW against lifetimes [LTF] ---------------------------------------------------------------


def test_p_alive_equals_lifetimes_on_cdnow(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    x, tx, T = _rfm(cdnow_summary)
    got = bgnbd_forecast.p_alive(cdnow_bgnbd.params_, x, tx, T)
    np.testing.assert_allclose(got, _lifetimes_p_alive(cdnow_bgnbd.params_, x, tx, T), rtol=P_ALIVE_RTOL, atol=0)
    np.testing.assert_array_equal(cdnow_bgnbd.p_alive(x, tx, T), got)
    assert (got[x == 0] == 1.0).all()


def test_expected_purchases_equal_lifetimes_on_cdnow(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    x, tx, T = _rfm(cdnow_summary)
    t = np.array([1.0, 13.0, 39.0, 52.0, 78.0, 365.0])[:, None]
    got = cdnow_bgnbd.expected_purchases(x, tx, T, t=t)
    assert got.shape == (6, len(x))
    np.testing.assert_allclose(got, _lifetimes_expected(cdnow_bgnbd.params_, t, x, tx, T), rtol=CDNOW_RTOL, atol=0)


def test_expected_purchases_if_alive_is_lifetimes_ratio_at_t_x_equal_T(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame
) -> None:
    # E[Y(t) | alive at T] = E[Y(t) | x, t_x = T, T] / P(alive | x, T, T): equation (10) with its
    # denominator divided out (the quantity PurchaseModel.expected_purchases evaluates per (x, T)).
    params = cdnow_bgnbd.params_
    x, _, T = _rfm(cdnow_summary.drop_duplicates(["frequency", "T"]))
    t = np.array([1.0, 39.0, 78.0])[:, None]
    expected = _lifetimes_expected(params, t, x, T, T) / _lifetimes_p_alive(params, x, T, T)
    got = bgnbd_forecast.expected_purchases_if_alive(params, x, T, t)
    np.testing.assert_allclose(got, expected, rtol=CDNOW_RTOL, atol=0)
    np.testing.assert_array_equal(cdnow_bgnbd.expected_purchases_if_alive(x, T, t=t), got)


@pytest.mark.parametrize("name", PARAMETER_SETS)
def test_expected_purchases_new_equals_lifetimes(name: str) -> None:
    # [FHL05] equation (9) against [LTF]'s expected_number_of_purchases_up_to_time.
    params = PARAMETER_SETS[name]
    t = np.array([0.0, 0.01, 0.1429, 1.0, 3.0, 39.0, 52.0, 78.0, 365.0, 3650.0, 1e5])
    got = bgnbd_forecast.expected_purchases_new(params, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(_lifetimes(params).expected_number_of_purchases_up_to_time(t), dtype=float)
    np.testing.assert_allclose(got, expected, rtol=NEW_RTOL, atol=0)
    assert got[0] == 0.0 and (np.diff(got) > 0).all()
    np.testing.assert_array_equal(BetaGeoModel.from_dict({"params": params}).expected_purchases_new(t), got)


# --- a grid with the edge cases, against lifetimes [LTF] and the exact series [SER] --------------

# x = 0 (t_x = 0), t_x = T (a purchase at T), t_x ≪ T, and frequent buyers (x = 500, 2000) whose
# ₂F₁(r+x, b+x; a+b+x−1; z) overflows in scipy over long horizons.
_ROWS = [
    (x, tx, T)
    for x in (0.0, 1.0, 2.0, 26.0, 500.0, 2000.0)
    for T in (0.5, 39.0, 365.0)
    for tx in ((0.0,) if x == 0 else (T, T / 2, 0.01))
]
GRID_X, GRID_TX, GRID_T = (np.array(column) for column in zip(*_ROWS))
GRID_HORIZONS = np.array([1.0, 39.0, 365.0, 3650.0])[:, None]


@pytest.mark.parametrize("name", PARAMETER_SETS)
def test_grid_p_alive_equals_lifetimes(name: str) -> None:
    params = PARAMETER_SETS[name]
    got = bgnbd_forecast.p_alive(params, GRID_X, GRID_TX, GRID_T)
    np.testing.assert_allclose(got, _lifetimes_p_alive(params, GRID_X, GRID_TX, GRID_T), rtol=P_ALIVE_RTOL, atol=0)
    assert ((got >= 0) & (got <= 1)).all()
    assert (got[GRID_X == 0] == 1.0).all()
    # [N021] at t_x = T: 1 / (1 + a/(b+x−1)) = (b+x−1)/(a+b+x−1), whatever r and alpha.
    at_T = (GRID_X > 0) & (GRID_TX == GRID_T)
    a, b, x = params["a"], params["b"], GRID_X[at_T]
    np.testing.assert_allclose(got[at_T], (b + x - 1) / (a + b + x - 1), rtol=1e-15)


@pytest.mark.parametrize("name", PARAMETER_SETS)
def test_grid_expected_purchases_equal_lifetimes_and_stay_bounded(name: str) -> None:
    params = PARAMETER_SETS[name]
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, tx, T, t = GRID_X, GRID_TX, GRID_T, GRID_HORIZONS
    # The grid reaches scipy's overflow of the direct ₂F₁ (x = 500 and 2000, long horizons).
    direct = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    assert np.isinf(direct).sum() >= 40
    if_alive = bgnbd_forecast.expected_purchases_if_alive(params, x, T, t)
    got = bgnbd_forecast.p_alive(params, x, tx, T) * if_alive
    assert got.shape == (len(t), len(x)) and np.isfinite(got).all()
    expected = _lifetimes_expected(params, t, x, tx, T)
    # lifetimes switches to the same transformation where its ₂F₁ overflows, so it stays finite here;
    # ours must also be a valid expectation at every point (checked below).
    assert np.isfinite(expected).all()  # so the comparison below covers every point
    np.testing.assert_allclose(got, expected, rtol=GRID_RTOL, atol=0)
    # A customer alive at T buys at most what Poisson purchasing at the posterior mean rate
    # (r+x)/(α+T) gives without dropout; with a > 1 at most (a+b+x−1)/(a−1) in all (t → ∞).
    assert (if_alive >= 0).all()
    assert (if_alive <= t * (r + x) / (alpha + T) * (1 + 1e-12)).all()
    if a > 1:
        assert (if_alive <= (a + b + x - 1) / (a - 1)).all()
    assert (np.diff(if_alive, axis=0) > 0).all()


@pytest.mark.parametrize("name", PARAMETER_SETS)
@pytest.mark.parametrize(
    ("x", "T", "t"),
    [
        (26.0, 31.0, 52.0),
        (500.0, 39.0, 365.0),  # scipy's direct ₂F₁ overflows (z = 0.89)
        (2000.0, 39.0, 39.0),  # overflows at z = 0.47; lifetimes is off by 3e-12 (a < 1)
        (2000.0, 0.5, 39.0),  # overflows
        (2000.0, 365.0, 1.0),  # finite ₂F₁ of 2e2; its ~1e-13 error shows through the direct form
        (2000.0, 365.0, 39.0),  # finite ₂F₁ of 1e87: direct form off by 4e-12, lifetimes by 1e-12
        (0.0, 0.0, 78.0),  # E[X(78)]
    ],
)
def test_expected_purchases_if_alive_equal_exact_series(name: str, x: float, T: float, t: float) -> None:
    params = PARAMETER_SETS[name]
    got = bgnbd_forecast.expected_purchases_if_alive(params, x, T, t)
    assert got.shape == ()
    assert float(got) == pytest.approx(series_expected_if_alive(params, x, T, t), rel=SERIES_RTOL)


def euler_series_expected_if_alive(params: dict[str, float], x: float, T: float, t: float) -> float:
    """[EUL]: (a+b+x−1)/(a−1) [1 − ((α+T)/(α+T+t))^(a−1) Σ_n (a+b−1−r)_n (a−1)_n / ((a+b+x−1)_n n!) zⁿ]."""
    with localcontext() as context:
        context.prec = 40
        r, alpha, a, b = (Decimal(repr(float(params[k]))) for k in ("r", "alpha", "a", "b"))
        x_, T_, t_ = (Decimal(repr(float(v))) for v in (x, T, t))
        A, B, C = a + b - 1 - r, a - 1, a + b + x_ - 1
        z = t_ / (alpha + T_ + t_)
        total = term = Decimal(1)
        n = 0
        while abs(term) >= abs(total) * Decimal(10) ** -36 or n < 3:
            term *= (A + n) * (B + n) / ((C + n) * (n + 1)) * z
            total += term
            n += 1
        power = (B * ((alpha + T_) / (alpha + T_ + t_)).ln()).exp()
        return float(C / (a - 1) * (1 - power * total))


@pytest.mark.parametrize("name", PARAMETER_SETS)
def test_the_two_references_agree(name: str) -> None:
    params = PARAMETER_SETS[name]
    for point in [(500.0, 39.0, 365.0), (2000.0, 39.0, 39.0), (2000.0, 365.0, 1.0)]:
        assert euler_series_expected_if_alive(params, *point) == pytest.approx(
            series_expected_if_alive(params, *point), rel=1e-15
        )


@pytest.mark.parametrize("name", PARAMETER_SETS)
@pytest.mark.parametrize(
    ("x", "T", "t"), [(500.0, 0.5, 3650.0), (2000.0, 0.5, 365.0), (2000.0, 0.5, 3650.0), (2000.0, 39.0, 1e5)]
)
def test_frequent_buyers_near_z_1_equal_euler_series(name: str, x: float, T: float, t: float) -> None:
    # z = 0.987 ... 0.9996: lifetimes is off here by up to 2.4e-10 with a < 1 (see GRID_RTOL).
    params = PARAMETER_SETS[name]
    got = float(bgnbd_forecast.expected_purchases_if_alive(params, x, T, t))
    assert got == pytest.approx(euler_series_expected_if_alive(params, x, T, t), rel=SERIES_RTOL)


# --- shapes and broadcasting -----------------------------------------------------------------


def test_broadcasting_horizons_by_customers_equals_a_loop_of_scalars() -> None:
    x, T = GRID_X, GRID_T
    t = GRID_HORIZONS
    matrix = bgnbd_forecast.expected_purchases_if_alive(FULL, x, T, t)
    assert matrix.shape == (len(t), len(x))
    loop = np.array(
        [[bgnbd_forecast.expected_purchases_if_alive(FULL, xi, Ti, float(h)) for xi, Ti in zip(x, T)] for h in t[:, 0]]
    )
    np.testing.assert_array_equal(matrix, loop)
    alive = bgnbd_forecast.p_alive(FULL, GRID_X, GRID_TX, GRID_T)
    np.testing.assert_array_equal(alive, [bgnbd_forecast.p_alive(FULL, *row)[0] for row in _ROWS])
    new = bgnbd_forecast.expected_purchases_new(FULL, t)
    assert new.shape == (len(t), 1)
    np.testing.assert_array_equal(new[:, 0], [bgnbd_forecast.expected_purchases_new(FULL, float(h)) for h in t[:, 0]])


# a + b < 1 (the fit allows it): for x = 0, c = a + b − 1 < 0 and ₂F₁ is negative.
SMALL_A_B = {"r": 0.5, "alpha": 4.0, "a": 0.3, "b": 0.5}


def test_a_plus_b_below_one_keeps_the_sign_of_2f1() -> None:
    # E[X(39)] against [LTF] (whose direct form handles the sign) and [SER]: 2.3974166448.
    got = float(bgnbd_forecast.expected_purchases_new(SMALL_A_B, 39.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = float(np.asarray(_lifetimes(SMALL_A_B).expected_number_of_purchases_up_to_time(39.0)))
    assert got == pytest.approx(expected, rel=NEW_RTOL)
    assert got == pytest.approx(series_expected_if_alive(SMALL_A_B, 0.0, 0.0, 39.0), rel=SERIES_RTOL)
    assert got == pytest.approx(2.3974166448, rel=1e-10)
    # A one-time buyer alive at T = 10 (lifetimes gives NaN here): [SER] only.
    alive = float(bgnbd_forecast.expected_purchases_if_alive(SMALL_A_B, 0.0, 10.0, 39.0))
    assert alive == pytest.approx(series_expected_if_alive(SMALL_A_B, 0.0, 10.0, 39.0), rel=SERIES_RTOL)
    # Repeat buyers have c > 0 and the usual positive ₂F₁: still equal to lifetimes.
    x, T = np.array([1.0, 5.0, 40.0]), np.array([10.0, 30.0, 60.0])
    ratio = _lifetimes_expected(SMALL_A_B, 39.0, x, T, T) / _lifetimes_p_alive(SMALL_A_B, x, T, T)
    np.testing.assert_allclose(bgnbd_forecast.expected_purchases_if_alive(SMALL_A_B, x, T, 39.0), ratio, rtol=CDNOW_RTOL)


def test_shapes_follow_the_inputs() -> None:
    assert bgnbd_forecast.p_alive(FULL, 2, 30.0, 39.0).shape == (1,)  # as lifetimes: at least 1-d
    assert isinstance(bgnbd_forecast.expected_purchases_if_alive(FULL, 2, 39.0, 39.0), np.ndarray)
    assert bgnbd_forecast.expected_purchases_if_alive(FULL, 2, 39.0, 39.0).shape == ()
    # t = 0: exactly +0.0 (no −0.0 from −expm1(0)) whatever a.
    for params in PARAMETER_SETS.values():
        zero = bgnbd_forecast.expected_purchases_new(params, 0.0)
        assert zero == 0.0 and not np.signbit(zero)
    two = bgnbd_forecast.expected_purchases_if_alive(FULL, np.array([0, 2]), np.array([39.0, 39.0]), 39.0)
    assert two.shape == (2,)
    assert bgnbd_forecast.expected_purchases_new(FULL, 52.0).shape == ()
    assert bgnbd_forecast.expected_purchases_new(FULL, np.arange(3.0)).shape == (3,)


def test_model_forecasts_are_the_module_functions(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    # expected_purchases = P(alive) × E[Y(t) | alive] per distinct (x, T), clipped at 0 ([FHL05] eq. 10).
    x, tx, T = _rfm(cdnow_summary)
    params = cdnow_bgnbd.params_
    expected = bgnbd_forecast.p_alive(params, x, tx, T) * bgnbd_forecast.expected_purchases_if_alive(params, x, T, 39.0)
    np.testing.assert_allclose(cdnow_bgnbd.expected_purchases(x, tx, T, t=39), expected, rtol=1e-15, atol=0)


# --- lifetimes stays out of the BG/NBD path ----------------------------------------------------


def test_fitting_and_forecasting_bgnbd_never_imports_lifetimes(tmp_path) -> None:
    # The CDNOW summary shipped with lifetimes, located here (this process has lifetimes) and read
    # by a fresh interpreter that fits, forecasts, saves and reloads a BG/NBD model. The control at
    # the end proves the check would see lifetimes: the adapter's oracle imports it.
    summary = pd.read_csv(lifetimes_adapter.dataset_path("cdnow_customers_summary"))
    path = tmp_path / "summary.csv"
    summary[["frequency", "recency", "T"]].to_csv(path, index=False)
    script = textwrap.dedent(
        """
        import json, sys

        import numpy as np
        import pandas as pd

        from clvmodel.models.bgnbd import BetaGeoModel

        summary = pd.read_csv(sys.argv[1])
        x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        model = BetaGeoModel().fit(summary)
        paths = model.expected_purchases(x, tx, T, t=np.arange(1.0, 40.0)[:, None])
        alive = model.p_alive(x, tx, T)
        new = model.expected_purchases_new(np.array([39.0, 52.0]))
        again = BetaGeoModel.from_dict(json.loads(json.dumps(model.to_dict())))
        assert (again.expected_purchases(x, tx, T, t=39.0) == paths[-1]).all()
        before = sorted(name for name in sys.modules if name.split(".")[0] in ("lifetimes", "autograd"))

        from clvmodel.models import lifetimes_adapter

        lifetimes_adapter.fitter_from_params("bgnbd", model.params_)
        after = "lifetimes" in sys.modules
        print(json.dumps({"before": before, "control": after, "params": model.params_,
                          "total": float(paths[-1].sum()), "alive": alive.tolist(), "new": new.tolist()}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["before"] == [], report["before"]
    assert report["control"] is True
    # The same numbers as in this process (lifetimes loaded or not): [FHL05] CDNOW fit.
    model = BetaGeoModel.from_dict({"params": report["params"]})
    assert report["params"]["r"] == pytest.approx(FULL["r"], rel=1e-3)
    x, tx, T = _rfm(summary)
    assert report["total"] == pytest.approx(float(model.expected_purchases(x, tx, T, t=39.0).sum()), rel=1e-12)
    assert report["total"] == pytest.approx(1653, abs=1.0)  # [BTYD] walkthrough, as in test_bgnbd.py
    assert report["alive"] == pytest.approx(model.p_alive(x, tx, T).tolist(), rel=1e-15)
    assert report["new"] == pytest.approx(model.expected_purchases_new(np.array([39.0, 52.0])).tolist(), rel=1e-15)
