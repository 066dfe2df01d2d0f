"""What the purchase models with static covariates share: the fit on collapsed rows and profile forecasts.

Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD
models", with R CLVTools 0.12's parameterisation: customer i's parameters are the population's
scaled by ``exp(±γᵀz_i)``, and every forecast is the plain model's formula at those parameters.
So a covariate model is its plain family plus a design (:class:`clvmodel.models.covariates.Design`)
and coefficients ``life.<column>`` (the dropout process) and ``trans.<column>`` (the purchase
process) for every encoded column, as CLVTools names them.

:class:`CovariateModel` is a mixin placed before the plain family's class
(``class ParetoNBDCovariateModel(CovariateModel, ParetoNBDModel)``); the family declares
``links`` (which base parameter each process scales, and with which sign) and its likelihood's
``_fit_covariates``. ``at(z)`` is the plain model at one profile; the forecasts with covariates
group customers by distinct profile and ask that plain model, so they are the plain family's
forecasts exactly (and a covariate model with every γ = 0 forecasts as the plain model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.models.base import ModelData, check_fitted, collapse, summary_of, weights_of
from clvmodel.models.mle import FitResult

if TYPE_CHECKING:
    from clvmodel.models.covariates import Design
    from clvmodel.models.purchase import PurchaseModel

__all__ = ["CovariateModel", "LIFE", "TRANS", "coefficient_names"]

#: Prefix of a coefficient of the dropout (lifetime) process, and of the purchase (transaction) process.
LIFE = "life."
TRANS = "trans."

RFM = ["frequency", "recency", "T"]


def coefficient_names(design_columns: Sequence[str]) -> list[str]:
    """``life.<col>`` for every encoded column, then ``trans.<col>`` (CLVTools' order and names)."""
    return [LIFE + c for c in design_columns] + [TRANS + c for c in design_columns]


class CovariateModel:
    """Mixin of a purchase model with static covariates in both processes.

    Class attributes the family sets:

    ``plain``
        The plain family's class (what :meth:`at` returns).
    ``links``
        ``base parameter -> (process prefix, sign)``: the parameter at profile ``z`` is
        ``value · exp(sign · γ_processᵀ z)`` (Pareto/NBD: ``alpha -> (trans., −1)``,
        ``beta -> (life., −1)``).

    Fitted state beside the plain family's: ``params_`` holds the base parameters (at z = 0) and
    the coefficients; ``design_`` the encoding; ``covariance_`` is over the log base parameters
    and the raw coefficients, in ``params_`` order.
    """

    plain: type = object
    links: dict[str, tuple[str, float]] = {}
    #: Always ``False``: the forecasts need each customer's covariates, so valuation asks for whole
    #: matrices (:meth:`expected_purchases` with ``covariates=``), never for P(alive) × pair terms.
    factorised = False
    #: None: the intervals rebuild the model draw by draw (the plain family's many-draw forecast has no covariates).
    expected_purchases_draws = None
    #: The saved state's ``design`` (:meth:`to_dict`), checked by the model document's schema.
    state_fields = {"design": "design"}
    design_: "Design | None" = None

    # -- fitting -----------------------------------------------------------------------------

    def _fit_covariates(self, columns: dict[str, np.ndarray], weights: np.ndarray, *,
                        design_columns: list[str]) -> FitResult:  # each family defines it
        raise NotImplementedError

    def fit(self, data: ModelData | pd.DataFrame) -> "CovariateModel":
        """Maximum likelihood on the RFM summary and its encoded covariates, rows collapsed on both.

        ``data.design`` names the encoded columns the summary carries (the pipeline puts them
        there when ``customers.covariates`` is set). Customers with equal ``(x, t_x, T, z)`` have
        equal likelihood terms, so the fit runs on the distinct rows with their counts as weights
        (a published summary's ``weights`` summed in).

        Raises
        ------
        ClvError
            No design (the config has no ``customers.covariates``), a design column missing from
            the summary, no customers or no repeat customers.
        """
        name = getattr(self, "name", type(self).__name__)
        design = getattr(data, "design", None) if isinstance(data, ModelData) else None
        if design is None:
            raise ClvError(f"{name} needs customers.covariates (a customers table with covariate columns) in the config")
        summary = summary_of(data, name)
        if len(summary) == 0:
            raise ClvError(f"{name}: no customers to fit; check the calibration period")
        missing = [c for c in design.columns if c not in summary.columns]
        if missing:
            raise ClvError(f"{name}: the summary has no encoded covariate column {missing[0]!r}")
        if not (summary["frequency"] > 0).any():
            customers = weights_of(summary).sum()
            raise ClvError(
                f"{name}: none of the {customers:,.0f} customers made a repeat purchase, so purchase rates "
                "and dropout cannot be estimated; use a longer calibration period or more customers"
            )
        columns = RFM + list(design.columns)
        unique, weights, _ = collapse(summary, columns, weights_of(summary) if "weights" in summary.columns else None)
        result = self._fit_covariates({c: unique[c].to_numpy() for c in columns}, weights,
                                      design_columns=list(design.columns))
        self._keep(result)  # type: ignore[attr-defined]  # FittedModel's, through the family class
        self.design_ = design
        return self

    # -- the parameters at a profile -----------------------------------------------------------

    def linear_params(self) -> tuple[str, ...]:
        """The coefficients' names: sampled on their own scale, not as logs (:mod:`clvmodel.uncertainty`)."""
        return tuple(k for k in (getattr(self, "params_", None) or {}) if k.startswith((LIFE, TRANS)))

    def design_columns(self) -> list[str]:
        """The encoded covariate columns, in the order of ``z``."""
        check_fitted(self)  # type: ignore[arg-type]
        if self.design_ is not None:
            return list(self.design_.columns)
        return [k[len(LIFE):] for k in self.params_ if k.startswith(LIFE)]  # type: ignore[attr-defined]

    def _profile_matrix(self, covariates: Any, rows: int | None = None) -> np.ndarray:
        """``covariates`` as a float matrix (rows × k), checked against the design."""
        name = getattr(self, "name", type(self).__name__)
        if covariates is None:
            raise ClvError(f"{name} forecasts need each customer's covariates (covariates=, one row per customer)")
        k = len(self.design_columns())
        z = np.asarray(covariates, dtype=float)
        z = z.reshape(1, -1) if z.ndim == 1 else z
        if z.ndim != 2 or z.shape[1] != k or (rows is not None and z.shape[0] != rows):
            want = f"{rows} × {k}" if rows is not None else f"n × {k}"
            raise ClvError(f"{name}: covariates must be a {want} matrix of the encoded columns "
                           f"({', '.join(self.design_columns())}), got shape {np.shape(covariates)}")
        if not np.all(np.isfinite(z)):
            raise ClvError(f"{name}: a covariate value is missing or infinite")
        return z

    def profile_params(self, covariates: Any) -> dict[str, np.ndarray]:
        """Each row's base parameters (arrays of length n) at the profiles ``covariates`` (n × k)."""
        check_fitted(self)  # type: ignore[arg-type]
        z = self._profile_matrix(covariates)
        params = self.params_  # type: ignore[attr-defined]
        columns = self.design_columns()
        out = {}
        for name in self.plain.param_names:
            value = np.full(len(z), float(params[name]))
            if name in self.links:
                process, sign = self.links[name]
                gamma = np.array([params[process + c] for c in columns], dtype=float)
                value = value * np.exp(sign * (z @ gamma))
            out[name] = value
        return out

    def at(self, z: Any = None) -> "PurchaseModel":
        """The plain model at one profile ``z`` (k encoded values; ``None``: z = 0, the baseline).

        No covariance: intervals at a profile come from draws of the covariate model's parameters.
        """
        check_fitted(self)  # type: ignore[arg-type]
        z = np.zeros(len(self.design_columns())) if z is None else np.asarray(z, dtype=float).ravel()
        values = self.profile_params(z.reshape(1, -1))
        model = self.plain()
        model.params_ = {name: float(v[0]) for name, v in values.items()}
        model.n_ = self.n_  # type: ignore[attr-defined]
        return model

    # -- forecasts -----------------------------------------------------------------------------

    def _by_profile(self, method: str, arrays: Sequence[Any], covariates: Any, **kwargs: Any) -> np.ndarray:
        """``method`` of the plain model at each distinct profile, on that profile's rows.

        Customers' arrays broadcast to the covariates' rows; a result of shape ``(..., rows)``
        (``t`` of shape ``(H, 1)`` gives ``(H, n)``).
        """
        check_fitted(self)  # type: ignore[arg-type]
        z = self._profile_matrix(covariates)
        n = len(z)
        columns = [np.broadcast_to(np.atleast_1d(np.asarray(a, dtype=float)), (n,)) for a in arrays]
        # Distinct profiles by base.collapse's hashing (np.unique(axis=0) sorts rows as bytes: ~4 s at 1M rows).
        if z.shape[1]:
            frame = pd.DataFrame(z, columns=[str(i) for i in range(z.shape[1])])
            unique, _, which = collapse(frame, list(frame.columns))
            profiles = unique.to_numpy(dtype=float)
        else:  # no columns: one profile, z = ()
            profiles, which = np.zeros((1, 0)), np.zeros(n, dtype=np.intp)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(profiles) + 1))
        out: np.ndarray | None = None
        for index, profile in enumerate(profiles):
            rows = order[bounds[index]:bounds[index + 1]]
            part = np.asarray(getattr(self.at(profile), method)(*(c[rows] for c in columns), **kwargs), dtype=float)
            if out is None:
                out = np.empty(part.shape[:-1] + (n,))
            out[..., rows] = part
        assert out is not None
        return out

    def expected_purchases(self, frequency: Any, recency: Any, T: Any, *, t: float | np.ndarray,
                           covariates: Any = None) -> np.ndarray:
        """E[Y(t) | x, t_x, T, z]: the plain forecast at each customer's parameters.

        ``covariates`` is the encoded matrix (n × k, :meth:`clvmodel.models.covariates.Design.encode`);
        customers are grouped by distinct profile, each group forecast once by :meth:`at`.
        """
        return self._by_profile("expected_purchases", (frequency, recency, T), covariates, t=t)

    def p_alive(self, frequency: Any, recency: Any, T: Any, *, covariates: Any = None) -> np.ndarray:
        """P(alive | x, t_x, T, z), the plain formula at each customer's parameters."""
        return self._by_profile("p_alive", (frequency, recency, T), covariates)

    def expected_purchases_if_alive(self, frequency: Any, T: Any, *, t: float | np.ndarray,
                                    covariates: Any = None) -> np.ndarray:
        """E[Y(t) | alive at T, x, T, z], the plain formula at each customer's parameters."""
        return self._by_profile("expected_purchases_if_alive", (frequency, T), covariates, t=t)

    def expected_purchases_new(self, t: float | np.ndarray, covariates: Any = None) -> np.ndarray:
        """E[X(t)] for a customer just acquired with profile ``covariates`` (k encoded values; ``None``: z = 0)."""
        if covariates is not None:
            covariates = self._profile_matrix(covariates, rows=1)[0]
        return self.at(covariates).expected_purchases_new(t)

    # -- state ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The plain family's state plus ``"design"`` (:meth:`clvmodel.models.covariates.Design.to_dict`)."""
        state = super().to_dict()  # type: ignore[misc]
        if self.design_ is None:
            raise ClvError(f"{getattr(self, 'name', '')}: a covariate model without its design cannot be saved")
        state["design"] = self.design_.to_dict()
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Any:
        """Rebuild from :meth:`to_dict`'s output, the design included."""
        from clvmodel.models.covariates import Design  # noqa: PLC0415  (the lead's encoder; kept off import time)

        model = super().from_dict(state)  # type: ignore[misc]
        design = state.get("design")
        model.design_ = Design.from_dict(design) if design is not None else None
        return model
