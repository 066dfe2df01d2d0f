"""Time-invariant covariates: how a customer table's columns become the design matrix ``z``.

The covariate models (Fader & Hardie 2007, "Incorporating time-invariant covariates into the
Pareto/NBD and BG/NBD models"; R CLVTools 0.12's parameterisation) scale a population parameter by
``exp(γᵀz_i)``. ``z_i`` is built as CLVTools builds it (``model.matrix`` with the intercept
dropped), so that the estimates compare:

* a numeric column is used as given: not centred, not scaled (a coefficient is then per unit of
  the column, and ``z = 0`` is the baseline customer the population parameters describe);
* a categorical (text) column becomes ``k − 1`` indicator columns named ``<column>_<level>``; the
  first level in sorted order is the baseline and gets none.

The design is fitted once on the training customers and saved in the model (:meth:`Design.to_dict`),
so that a profile scored later (``clvmodel acquisition``, the REST server) is encoded identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError

__all__ = ["Design", "NUMERIC", "CATEGORICAL"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: An encoded column name is also part of an MLflow metric name (``<model>.life.<column>``), which
#: allows letters, digits, ``_ - . /`` and spaces; anything else in a level becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: More levels than this in one column is almost surely an id or a free-text column.
MAX_LEVELS = 50
#: Columns of the RFM summary the encoded covariates are added to: a covariate (or one of its
#: indicator columns) by one of these names would overwrite the customers' own history or spend.
RESERVED = frozenset({
    "customer_id", "frequency", "recency", "T", "monetary_value", "weights",
    "frequency_holdout", "monetary_value_holdout", "duration_holdout", "first_day",
})


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)


def _level_text(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def _missing(values: pd.Series) -> pd.Series:
    missing = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        missing |= values.astype(str).str.strip().isin(["", "nan", "NaN", "None", "<NA>"])
    return missing


@dataclass
class Design:
    """The encoding of a customer table's covariates; see the module docstring.

    Attributes
    ----------
    covariates
        The raw column names, in the configured order.
    kinds
        ``covariate -> "numeric" | "categorical"``.
    levels
        ``covariate -> sorted levels`` of each categorical one; the first is the baseline.
    columns
        The encoded column names, in the order of ``z``'s columns: a numeric covariate's own name,
        ``<covariate>_<level>`` for each non-baseline level of a categorical one; characters other
        than letters, digits, ``_ - .`` become ``_`` (the names are part of MLflow metric names).
    """

    covariates: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: pd.DataFrame, covariates: list[str], origin: str) -> "Design":
        """The design of ``covariates`` as observed in ``frame`` (one row per customer).

        Raises
        ------
        ClvError
            A covariate column absent, a missing value (no customer is dropped or imputed
            silently), a covariate with one value over all customers (its coefficient is not
            identified beside the population parameters), too many levels, or two encoded columns
            with one name.
        """
        kinds: dict[str, str] = {}
        levels: dict[str, list[str]] = {}
        columns: list[str] = []
        for name in covariates:
            if name not in frame.columns:
                raise ClvError(
                    f"{origin}: no column {name!r} for customers.covariates (columns: {', '.join(map(str, frame.columns))})"
                )
            values = frame[name]
            missing = _missing(values)
            if missing.any():
                example = frame.loc[missing].index[0]
                raise ClvError(
                    f"{origin}: covariate {name!r} is missing for {int(missing.sum()):,} of {len(frame):,} customers "
                    f"(e.g. row {example}); fill it in or leave {name!r} out of customers.covariates"
                )
            if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
                kinds[name] = CATEGORICAL
                found = sorted(_level_text(values).unique())
                if len(found) > MAX_LEVELS:
                    raise ClvError(
                        f"{origin}: covariate {name!r} has {len(found):,} distinct values (at most {MAX_LEVELS}); "
                        "is it an id or free text? Group its values or leave it out of customers.covariates"
                    )
                levels[name] = found
                encoded = [f"{_safe(name)}_{_safe(level)}" for level in found[1:]]
            else:
                kinds[name] = NUMERIC
                found = [str(v) for v in pd.unique(values.astype(float))[:2]]
                encoded = [_safe(name)]
            if len(found) < 2:
                raise ClvError(
                    f"{origin}: covariate {name!r} has the same value ({found[0]}) for every customer, so its effect "
                    f"cannot be estimated; leave it out of customers.covariates"
                )
            columns.extend(encoded)
        reserved = sorted(set(columns) & RESERVED)
        if reserved:
            raise ClvError(
                f"{origin}: a covariate gives a column named {reserved[0]!r}, a column of the customers' own history; "
                "rename the covariate (or its level)"
            )
        clashes = sorted({c for c in columns if columns.count(c) > 1})
        if clashes:
            raise ClvError(
                f"{origin}: covariates give two columns named {clashes[0]!r} (levels that differ only in "
                "characters other than letters, digits, '_', '-' and '.'); rename the levels"
            )
        return cls(list(covariates), kinds, levels, columns)

    def encode(self, frame: pd.DataFrame, origin: str) -> np.ndarray:
        """The design matrix of ``frame``'s rows, shape ``(len(frame), len(columns))``.

        Raises
        ------
        ClvError
            A covariate column absent, a missing or non-numeric value, or a level not seen in
            training (its coefficient is unknown).
        """
        out = np.zeros((len(frame), len(self.columns)), dtype=float)
        j = 0
        for name in self.covariates:
            if name not in frame.columns:
                raise ClvError(f"{origin}: no column {name!r}; the model's covariates are {', '.join(self.covariates)}")
            values = frame[name]
            missing = _missing(values)
            if missing.any():
                raise ClvError(f"{origin}: covariate {name!r} is missing for {int(missing.sum()):,} of {len(frame):,} rows")
            if self.kinds[name] == NUMERIC:
                numbers = pd.to_numeric(values, errors="coerce")
                bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float))
                if bad.any():
                    raise ClvError(
                        f"{origin}: covariate {name!r} must be a number, got {str(values[bad].iloc[0])[:40]!r} "
                        f"in {int(bad.sum()):,} row(s)"
                    )
                out[:, j] = numbers.to_numpy(dtype=float)
                j += 1
                continue
            text = _level_text(values)
            known = self.levels[name]
            unseen = ~text.isin(known)
            if unseen.any():
                raise ClvError(
                    f"{origin}: covariate {name!r} has level {text[unseen].iloc[0][:40]!r}, not seen in training "
                    f"(levels: {', '.join(known)})"
                )
            for level in known[1:]:
                out[:, j] = (text == level).to_numpy(dtype=float)
                j += 1
        return out

    def profiles(self, frame: pd.DataFrame) -> list[tuple[dict[str, Any], float]]:
        """The distinct covariate rows of ``frame`` and the share of rows each one has, by share."""
        if not self.covariates or len(frame) == 0:
            return [({}, 1.0)] if len(frame) else []
        raw = frame[self.covariates].copy()
        for name in self.covariates:
            raw[name] = _level_text(raw[name]) if self.kinds[name] == CATEGORICAL else raw[name].astype(float)
        counts = raw.value_counts(sort=False).reset_index(name="count")
        counts = counts.sort_values("count", ascending=False, kind="stable")
        total = float(counts["count"].sum())
        return [
            ({name: _plain(row[name]) for name in self.covariates}, float(row["count"]) / total)
            for _, row in counts.iterrows()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "covariates": list(self.covariates),
            "kinds": dict(self.kinds),
            "levels": {k: list(v) for k, v in self.levels.items()},
            "columns": list(self.columns),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "Design":
        return cls(
            covariates=[str(c) for c in state.get("covariates", [])],
            kinds={str(k): str(v) for k, v in (state.get("kinds") or {}).items()},
            levels={str(k): [str(x) for x in v] for k, v in (state.get("levels") or {}).items()},
            columns=[str(c) for c in state.get("columns", [])],
        )


def _plain(value: Any) -> Any:
    """A JSON-able scalar: numpy numbers become Python ones."""
    return value.item() if isinstance(value, np.generic) else value
