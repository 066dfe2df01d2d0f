"""Tests for clvmodel.models.lifetimes_adapter, the one place clvmodel touches lifetimes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import lifetimes_adapter
from clvmodel.models.base import collapse

RFM = ["frequency", "recency", "T"]


def _collapsed(summary: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    unique, weights, _ = collapse(summary, RFM)
    return {c: unique[c].to_numpy() for c in RFM}, weights


# --- bundled data sets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("CDNOW_sample", "CDNOW_sample.txt"),
        ("CDNOW_master", "CDNOW_master.txt"),
        ("cdnow_customers_summary", "cdnow_customers_summary.csv"),
    ],
)
def test_dataset_path(name: str, file: str) -> None:
    assert name in lifetimes_adapter.DATASETS
    path = lifetimes_adapter.dataset_path(name)
    assert path.name == file
    assert path.is_file() and path.parent.name == "datasets"


def test_dataset_sizes() -> None:
    # CDNOW_sample.txt: 6,919 transactions; cdnow_customers_summary.csv: header + 2,357 customers.
    sample = lifetimes_adapter.dataset_path("CDNOW_sample").read_text(encoding="utf-8").splitlines()
    summary = pd.read_csv(lifetimes_adapter.dataset_path("cdnow_customers_summary"))
    assert len(sample) == 6919
    assert list(summary.columns) == ["ID", "frequency", "recency", "T"] and len(summary) == 2357


@pytest.mark.parametrize("name", ["donation", "cdnow", "../fitters/__init__", ""])
def test_unknown_dataset(name: str) -> None:
    with pytest.raises(
        ClvError,
        match=rf"^unknown bundled data set {name!r}; choose one of: CDNOW_sample, CDNOW_master, cdnow_customers_summary",
    ):
        lifetimes_adapter.dataset_path(name)


# --- fitting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["bgnbd", "gamma_gamma"])
def test_non_converging_fit_raises_convergence_failure(model: str, cdnow_summary: pd.DataFrame, capsys) -> None:
    if model == "bgnbd":
        columns, weights = _collapsed(cdnow_summary)
    else:
        repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
        columns = {c: repeat[c].to_numpy(dtype=float) for c in ("frequency", "monetary_value")}
        weights = np.ones(len(repeat))
    with pytest.raises(
        ConvergenceFailure,
        match=rf"^{model} fit did not converge from any of 3 starts \(message: Maximum number of iterations has been "
        r"exceeded\.\); check the data",
    ) as err:
        lifetimes_adapter.fit(model, columns, weights, maxiter=1)
    assert isinstance(err.value, ClvError)  # the CLI's one-line error path
    assert capsys.readouterr().out == ""  # lifetimes' print(output) is captured, not shown


def test_fit_result(cdnow_summary: pd.DataFrame) -> None:
    columns, weights = _collapsed(cdnow_summary)
    assert len(weights) < len(cdnow_summary) and weights.sum() == len(cdnow_summary)
    result = lifetimes_adapter.fit("bgnbd", columns, weights)
    assert list(result.params) == ["r", "alpha", "a", "b"]
    assert list(result.standard_errors) == list(result.params)
    assert result.n == 2357
    assert result.log_likelihood == pytest.approx(-9582.43, abs=0.01)  # R BTYD walkthrough; REFERENCE.md
    assert result.covariance is not None and np.asarray(result.covariance).shape == (4, 4)
    se_log = np.sqrt(np.diag(np.asarray(result.covariance)))  # delta method: se(θ) = θ · se(log θ)
    np.testing.assert_allclose(
        list(result.standard_errors.values()), np.array(list(result.params.values())) * se_log, rtol=1e-9
    )


def test_doubling_the_weights_doubles_the_log_likelihood_not_the_estimates(cdnow_summary: pd.DataFrame) -> None:
    columns, weights = _collapsed(cdnow_summary)
    once = lifetimes_adapter.fit("bgnbd", columns, weights)
    twice = lifetimes_adapter.fit("bgnbd", columns, 2 * weights)
    for name in once.params:
        assert twice.params[name] == pytest.approx(once.params[name], rel=1e-5)
        assert twice.standard_errors[name] == pytest.approx(once.standard_errors[name] / np.sqrt(2), rel=1e-3)
    assert twice.log_likelihood == pytest.approx(2 * once.log_likelihood, rel=1e-9)
    assert twice.n == 2 * once.n


def _lifetimes_reference(model: str, summary: pd.DataFrame):
    """lifetimes' own fit on all rows (with its autograd Hessian), the oracle of the adapter's fit."""
    import lifetimes

    with warnings.catch_warnings():
        if model == "gamma_gamma":
            repeat = summary[summary["frequency"] > 0]
            return lifetimes.GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
        cls = getattr(lifetimes, lifetimes_adapter.LIFETIMES_CLASSES[model])
        return cls().fit(*(summary[c].to_numpy(dtype=float) for c in RFM))


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "gamma_gamma"])
def test_fit_equals_lifetimes_fit(model: str, cdnow_summary: pd.DataFrame) -> None:
    """The replayed minimisation gives lifetimes' estimates; central differences its autograd SEs."""
    if model == "gamma_gamma":
        repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
        unique, weights, _ = collapse(repeat, ["frequency", "monetary_value"])
        columns = {c: unique[c].to_numpy() for c in ("frequency", "monetary_value")}
    else:
        columns, weights = _collapsed(cdnow_summary)
    result = lifetimes_adapter.fit(model, columns, weights)
    reference = _lifetimes_reference(model, cdnow_summary)
    assert list(result.params) == list(reference.params_.index)
    for name in result.params:
        assert result.params[name] == pytest.approx(float(reference.params_[name]), rel=1e-8), name
        assert result.standard_errors[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-6), name


def test_bgnbd_reference_path_equals_the_numpy_fit(cdnow_summary: pd.DataFrame) -> None:
    from clvmodel.models import bgnbd_likelihood

    columns, weights = _collapsed(cdnow_summary)
    reference = lifetimes_adapter.fit("bgnbd", columns, weights)
    numpy_fit = bgnbd_likelihood.fit(columns, weights)
    for name in reference.params:
        assert numpy_fit.params[name] == pytest.approx(reference.params[name], rel=1e-10)
        assert numpy_fit.standard_errors[name] == pytest.approx(reference.standard_errors[name], rel=1e-7)
    assert numpy_fit.log_likelihood == pytest.approx(reference.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(numpy_fit.covariance, reference.covariance, rtol=1e-6)


def test_lifetimes_input_checks_become_convergence_failures() -> None:
    columns = {"frequency": np.array([1.0, 2.0]), "recency": np.array([5.0, 12.0]), "T": np.array([10.0, 11.0])}
    with pytest.raises(
        ConvergenceFailure,
        match=r"^mbgnbd fit did not converge \(ValueError: Some values in recency vector are larger than T vector\.\)",
    ):
        lifetimes_adapter.fit("mbgnbd", columns, np.ones(2))


def test_fitter_from_params_predicts_like_lifetimes() -> None:
    params = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}
    fitter = lifetimes_adapter.fitter_from_params("bgnbd", params)
    assert type(fitter).__name__ == "BetaGeoFitter"
    assert fitter.params_.to_dict() == params
    # R BTYD walkthrough: E[X(52)] for a new customer 1.444004; REFERENCE.md
    assert float(fitter.expected_number_of_purchases_up_to_time(52.0)) == pytest.approx(1.444004, abs=1e-6)


# --- no side effects on the caller's warning filters ------------------------------------------


_PRELUDE = """
import sys, warnings
import numpy as np, pandas as pd
import scipy.optimize, scipy.special, scipy.stats  # their own import-time filters are not ours
before = list(warnings.filters)
"""
_CHECK = """
after = list(warnings.filters)
assert after == before, [f for f in after if f not in before]
print("filters unchanged")
"""


def _fresh_interpreter(body: str, *args: str) -> subprocess.CompletedProcess:
    script = _PRELUDE + textwrap.dedent(body) + _CHECK
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)


def test_import_and_fit_leave_warning_filters_alone_in_a_fresh_interpreter() -> None:
    """``import lifetimes`` and every lifetimes fit call warnings.simplefilter; the adapter must undo it."""
    path = str(lifetimes_adapter.dataset_path("cdnow_customers_summary"))
    done = _fresh_interpreter(
        """
        from clvmodel.models import lifetimes_adapter
        from clvmodel.models.gamma_gamma import GammaGammaModel
        from clvmodel.models.mbgnbd import ModifiedBetaGeoModel  # BG/NBD no longer touches lifetimes
        summary = pd.read_csv(sys.argv[1])
        model = ModifiedBetaGeoModel().fit(summary)
        model.expected_purchases(summary["frequency"], summary["recency"], summary["T"], t=39)
        model.p_alive(summary["frequency"], summary["recency"], summary["T"])
        rng = np.random.default_rng(0)
        spend = pd.DataFrame({"frequency": rng.integers(1, 9, 200), "monetary_value": rng.gamma(6, 5, 200)})
        GammaGammaModel().fit(spend).expected_order_value(spend["frequency"], spend["monetary_value"])
        import lifetimes  # already imported (under catch_warnings) by the adapter: no new side effect
        """,
        path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "filters unchanged"


def test_dataset_path_leaves_warning_filters_alone_in_a_fresh_interpreter() -> None:
    # importlib.resources.files("lifetimes") imports lifetimes, whose import calls
    # warnings.simplefilter("ignore", FutureWarning); io reaches this for every bundled source.
    done = _fresh_interpreter(
        """
        from clvmodel.models import lifetimes_adapter
        lifetimes_adapter.dataset_path("CDNOW_sample")
        """
    )
    assert done.returncode == 0, done.stderr


def test_fit_leaves_warning_filters_alone_in_process(cdnow_summary: pd.DataFrame) -> None:
    columns, weights = _collapsed(cdnow_summary)
    before = list(warnings.filters)
    lifetimes_adapter.fit("bgnbd", columns, weights)
    with pytest.raises(ConvergenceFailure):
        lifetimes_adapter.fit("bgnbd", columns, weights, maxiter=1)
    lifetimes_adapter.fitter_from_params("bgnbd", {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4})
    assert list(warnings.filters) == before
