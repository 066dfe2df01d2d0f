"""Tests for the shared maximum-likelihood machinery (clvmodel.models.mle): how convergence is decided.

scipy's BFGS verdict ("precision loss") depends on the last bits of a machine's arithmetic; the
decision here is the gradient at the stop (issue 12).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from clvmodel.errors import ConvergenceFailure
from clvmodel.models import mle

PRECISION_LOSS = "Desired error not necessarily achieved due to precision loss."


def _stop(monkeypatch: pytest.MonkeyPatch, gradient: float, success: bool, message: str) -> None:
    """Make scipy's minimize stop at x = 0 with the given largest |gradient| and verdict."""
    result = OptimizeResult(x=np.zeros(2), fun=1.0, jac=np.array([gradient, 0.0]), success=success, message=message)
    monkeypatch.setattr(mle, "minimize", lambda *args, **kwargs: result)


@pytest.mark.parametrize("gradient", [0.0, 3e-6, mle.GRADIENT_TOLERANCE])
def test_a_precision_loss_stop_at_a_vanishing_gradient_is_an_optimum(monkeypatch, gradient: float) -> None:
    _stop(monkeypatch, gradient, success=False, message=PRECISION_LOSS)
    result = mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")
    assert mle.stationary(result) and result.x.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("gradient", "message"),
    [(2 * mle.GRADIENT_TOLERANCE, PRECISION_LOSS), (np.nan, PRECISION_LOSS), (0.5, "Maximum number of iterations has been exceeded.")],
)
def test_a_stop_away_from_a_stationary_point_is_a_failure_in_scipys_words(monkeypatch, gradient: float, message: str) -> None:
    _stop(monkeypatch, gradient, success=False, message=message)
    with pytest.raises(ConvergenceFailure, match=rf"^m fit did not converge \(message: {message}\); check the data"):
        mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")


def test_a_reported_success_far_from_stationary_is_left_to_fit_result(monkeypatch) -> None:
    # A loose tol: scipy says success; fit_result then says how far from the optimum it stopped.
    _stop(monkeypatch, 0.5, success=True, message="Optimization terminated successfully.")
    result = mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")
    assert not mle.stationary(result)
    with pytest.raises(ConvergenceFailure, match=r"^m fit stopped before the optimum \(largest gradient 0\.5 per customer"):
        mle.fit_result("m", {"a": 1.0, "b": 1.0}, -1.0, result.jac, np.eye(2), 10)


def test_a_fit_the_data_do_not_identify_is_flagged(recwarn: pytest.WarningsRecorder) -> None:
    # One customer: BG/NBD's likelihood rises towards infinity in its parameters; BFGS stops where
    # the gradient vanishes (a different place on each machine), with standard errors of the log in
    # the hundreds. The summary must say so rather than print those numbers as a fit.
    import pandas as pd

    from clvmodel.models.registry import family_class

    one = pd.DataFrame({"customer_id": ["007"], "frequency": [2.0], "recency": [21.3], "T": [30.0],
                        "monetary_value": [10.0]})
    family_class("bgnbd")().fit(one)
    messages = [str(w.message) for w in recwarn.list if issubclass(w.category, UserWarning)]
    assert any(m.startswith("bgnbd: these data do not identify") for m in messages), messages


def test_a_fit_the_data_identify_is_not_flagged(cdnow_summary, recwarn: pytest.WarningsRecorder) -> None:
    from clvmodel.models.registry import family_class

    family_class("bgnbd")().fit(cdnow_summary)
    assert not [w for w in recwarn.list if "do not identify" in str(w.message)]
