"""The printed training report in words: parameters in the data's terms, the metrics explained."""

from __future__ import annotations

import numpy as np
import pytest

from clvmodel.report import HOLDOUT_METRICS, _spend_meaning, parameter_meaning


def test_bgnbd_in_words_by_hand() -> None:
    # CDNOW's BG/NBD (Fader, Hardie & Lee 2005): alpha/r = 4.4136/0.2426 = 18.19; a/(a+b) = 0.7929/3.2188 = 24.6 %
    lines = parameter_meaning("bgnbd", {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}, "week")
    assert lines == [
        "while active, a customer buys every 1/E[λ] = alpha/r = 18.2 weeks on average",
        "after each repeat purchase, E[p] = a/(a+b) = 25 % of customers drop out",
    ]
    mbg = parameter_meaning("mbgnbd", {"r": 0.5, "alpha": 6.0, "a": 1.0, "b": 3.0}, "day")
    assert mbg == ["while active, a customer buys every 1/E[λ] = alpha/r = 12.0 days on average",
                   "after each purchase, the first included, E[p] = a/(a+b) = 25 % of customers drop out"]


def test_pareto_nbd_lifetime_mean_only_when_finite() -> None:
    # s = 2, beta = 10: mean lifetime 10/(2-1) = 10; median 10 (2^(1/2) - 1) = 4.14
    finite = parameter_meaning("pareto_nbd", {"r": 0.5, "alpha": 10.0, "s": 2.0, "beta": 10.0}, "week")
    assert finite[1] == ("mean lifetime beta/(s-1) = 10.0 weeks; half the customers stay active beyond "
                         "beta(2^(1/s) - 1) = 4.1 weeks")
    # CDNOW: s = 0.6062 <= 1, no finite mean; median 11.6687 (2^(1/0.6062) - 1) = 24.9
    tail = parameter_meaning("pareto_nbd", {"r": 0.5533, "alpha": 10.5777, "s": 0.6062, "beta": 11.6687}, "week")
    assert tail[0].endswith("alpha/r = 19.1 weeks on average")
    assert tail[1] == ("long-tailed lifetimes (s = 0.61 <= 1): no finite mean; half the customers stay active "
                       "beyond beta(2^(1/s) - 1) = 24.9 weeks")
    assert parameter_meaning("challenger", {}, "week") == []


def test_gamma_gamma_mean_spend_by_hand() -> None:
    # p v / (q - 1) = 6.25 * 15.44 / 2.7442 = 35.17 (CDNOW)
    assert _spend_meaning({"p": 6.2496, "q": 3.7442, "v": 15.4435}).startswith(
        "a customer's mean spend per order is 35.17 on average, p*v/(q-1)")
    assert "no finite mean" in _spend_meaning({"p": 1.0, "q": 0.9, "v": 1.0})
    assert _spend_meaning({}) is None


def test_cdnow_report_says_what_the_numbers_mean(trained_cdnow) -> None:
    out, result = trained_cdnow.stdout, trained_cdnow.result
    assert result.model.primary == "pareto_nbd"  # the demo's selection does not move
    assert "  in words  pareto_nbd: while active, a customer buys every 1/E[λ] = alpha/r = 19.1 weeks" in out
    alive = 100 * float(np.mean(result.scores["p_alive"]))
    assert alive == pytest.approx(45, abs=0.5)
    assert (f"pareto_nbd: {alive:.0f} % of customers are still active at the calibration end 1997-09-30 "
            "(mean P(alive) of the 2,357 scored)") in out
    assert "gamma_gamma: a customer's mean spend per order is 35.17 on average" in out
    for name, meaning in HOLDOUT_METRICS:
        assert f"    {name:<12} {meaning}" in out
    assert "look first at pct_error on spend" in out and "(spend_mae)" in out
    assert "within 5 points of the best (11.5 %): |error| <= 16.5 %: pareto_nbd 29.45, mbgnbd 29.71, bgnbd 30.41" in out
