"""What every fitted model shares: the fitted-state check, JSON form, and row collapsing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.models.mle import CONVERGED, FitResult

__all__ = ["FittedModel", "collapse", "check_fitted"]


def collapse(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Unique rows of ``columns``, how many customers each stands for, and the map back.

    Customers with identical inputs have identical likelihood terms and predictions, so models
    fit on the unique rows with ``weights`` and predict each unique row once. On CDNOW's 2,357
    customers (weeks) this leaves about 1,400 rows; at a million customers about 660,000 distinct
    ``(x, t_x, T)`` and 480,000 distinct ``(x, m̄)`` of 900,000 repeat buyers.

    Returns
    -------
    unique, weights, inverse
        ``unique.iloc[inverse]`` rebuilds ``frame[columns]`` row by row. Rows are sorted (as
        ``np.unique(axis=0)`` sorts them; NaN last), so the result does not depend on row order.
    """
    # Each column is hashed to sorted codes and the codes are folded column by column into one
    # dense integer key (re-numbered after each column, so it never overflows) whose order is the
    # rows' lexicographic order. At a million customers: ~0.15 s, against 0.22 s for a pandas
    # group-by on the columns and ~4 s for np.unique(axis=0), which sorts rows as byte strings.
    data = {column: frame[column].to_numpy(dtype=float) for column in columns}
    key = np.zeros(len(frame), dtype=np.intp)
    for i, column in enumerate(columns):
        codes, uniques = pd.factorize(data[column], sort=True, use_na_sentinel=False)
        key = codes if i == 0 else pd.factorize(key * len(uniques) + codes, sort=True)[0]
    counts = np.bincount(key)
    representative = np.empty(len(counts), dtype=np.int64)
    representative[key] = np.arange(len(frame))  # some row of each group; all its rows are equal
    unique = pd.DataFrame({column: values[representative] for column, values in data.items()})
    return unique, counts.astype(float), key


def check_fitted(model: "FittedModel") -> None:
    if getattr(model, "params_", None) is None:
        raise ClvError(f"{type(model).__name__} is not fitted; call fit(...) or load a trained model first")


class FittedModel:
    """Base of the BTYD and spend models: fitted state ends in ``_`` (scikit-learn's convention)."""

    name: str = ""
    params_: dict[str, float] | None = None
    standard_errors_: dict[str, float] | None = None
    log_likelihood_: float | None = None
    n_: int | None = None
    #: Covariance of the log-parameters (inverse Hessian), rows and columns in ``params_`` order,
    #: for intervals; ``None`` if unknown.
    covariance_: list[list[float]] | None = None
    #: How the fit ended: ``"converged"`` (the MLE), or ``"ridge"`` (no finite MLE; ``params_`` is a
    #: fixed point far out on the ridge and ``limit_`` holds what the data identify there).
    status_: str = CONVERGED
    limit_: dict[str, float] | None = None

    def _fit_collapsed(self, frame: pd.DataFrame, columns: list[str], **options: Any) -> "FittedModel":
        """Fit on the distinct rows of ``columns`` weighted by their counts; keep the parameters,
        standard errors, covariance, log-likelihood and customer count."""
        unique, weights, _ = collapse(frame, columns)
        result = self._fit_rows({c: unique[c].to_numpy() for c in columns}, weights, **options)
        self.params_ = result.params
        self.standard_errors_ = result.standard_errors
        self.covariance_ = result.covariance
        self.log_likelihood_ = result.log_likelihood
        self.n_ = result.n
        self.status_ = result.status
        self.limit_ = result.limit
        return self

    def _fit_rows(self, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
        """Maximum likelihood on weighted rows: lifetimes' likelihood through the adapter, unless a
        model brings its own (BG/NBD: :mod:`.bgnbd_likelihood`; Gamma-Gamma: :mod:`.gamma_gamma_likelihood`)."""
        from clvmodel.models import lifetimes_adapter

        return lifetimes_adapter.fit(self.name, columns, weights, **options)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state: three or four numbers determine every prediction."""
        check_fitted(self)
        return {
            "type": self.name,
            "params": dict(self.params_ or {}),
            "standard_errors": dict(self.standard_errors_ or {}),
            "log_likelihood": self.log_likelihood_,
            "n": self.n_,
            "status": self.status_,
            **({"limit": dict(self.limit_)} if self.limit_ is not None else {}),
            # Named: JSON readers may reorder ``params`` (ours sorts keys), the matrix must follow.
            "covariance_log_params": (
                {"params": list(self.params_ or {}), "matrix": self.covariance_} if self.covariance_ is not None else None
            ),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "FittedModel":
        """Rebuild a fitted model from :meth:`to_dict`'s output (no data needed)."""
        model = cls()
        model.params_ = {k: float(v) for k, v in state["params"].items()}
        # The document stores a NaN standard error (not identified: a singular Hessian, a ridge) as
        # null, since JSON has no NaN: read it back as NaN.
        model.standard_errors_ = {
            k: float("nan") if v is None else float(v) for k, v in (state.get("standard_errors") or {}).items()
        }
        model.log_likelihood_ = state.get("log_likelihood")
        model.n_ = state.get("n")
        model.status_ = str(state.get("status") or CONVERGED)  # documents saved before the status: converged
        limit = state.get("limit")
        model.limit_ = {k: float(v) for k, v in limit.items()} if limit is not None else None
        covariance = state.get("covariance_log_params")
        if covariance is not None:
            order = [covariance["params"].index(name) for name in model.params_]
            model.covariance_ = np.asarray(covariance["matrix"], dtype=float)[np.ix_(order, order)].tolist()
        return model

    def __repr__(self) -> str:
        if self.params_ is None:
            return f"{type(self).__name__}()"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({shown})"
