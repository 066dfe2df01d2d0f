"""What a *new* customer is worth: the acquisition value per channel or covariate profile.

The remaining CLV of a customer already in the base (:mod:`clvmodel.clv`) starts at the end of
their observed history; a customer about to be acquired starts the purchase process at ``t = 0``
and brings their first order. For a horizon of ``H`` periods, a discount rate ``d`` per period and
a margin ``m``::

    acquisition_value = m × ( E[first order value]
                              + Σ_{k=1..H} (E[X(k)] − E[X(k−1)]) × E[M] / (1 + d)^k )

* ``E[X(t)]``: expected *repeat* purchases in ``(0, t]`` of a customer acquired at ``t = 0``
  (Fader, Hardie & Lee 2005, "Counting your customers the easy way", equation (9) for BG/NBD;
  the Pareto/NBD, MBG/NBD, GGom/NBD and BG/BB equivalents through each family's
  ``expected_purchases_new``). With a covariate model (Fader & Hardie 2007, "Incorporating
  time-invariant covariates into the Pareto/NBD and BG/NBD models"; CLVTools 0.12's links) it is
  the same formula at the profile's parameters, e.g. BG/NBD ``α_i = α·exp(−γ_transᵀz)``,
  ``a_i = a·exp(γ_lifeᵀz)``, ``b_i = b·exp(γ_lifeᵀz)``.
* ``E[M]``: the Gamma-Gamma population mean spend per transaction ``p·v/(q − 1)`` (Fader & Hardie
  2013, "The Gamma-Gamma model of monetary value", the mean of equation (5) at ``x = 0``): the
  channel's own model when it has one, the pooled model otherwise.
* ``E[first order value]``: the mean first-purchase-day amount of the channel's customers in
  training (:class:`clvmodel.models.channels.ChannelState`).

Purchases of period ``k`` are discounted at its end, as in :mod:`clvmodel.clv`; the first order
is period 0 and not discounted. A channel's value is the share-weighted mean over its customers'
observed covariate profiles (the value is linear in ``E[X]``, so this is also the value at the
mean purchase curve).

**The horizon or the discount rate must bound the value.** For BG/NBD a customer makes on
average ``E[(1 − p)/p] = b/(a − 1)`` repeat purchases before dropping out when ``a > 1``, and
infinitely many when ``a ≤ 1`` (CDNOW: ``a = 0.79``): the undiscounted value over an unbounded
horizon is then infinite. Pareto/NBD's is finite only for ``s > 1``. So ``H`` is always finite
here (at most 100 years), and a discount rate > 0 keeps long horizons meaningful.

Intervals: the parametric bootstrap of :mod:`clvmodel.uncertainty`. Parameter vectors of the
purchase model and of every spend model used are drawn from their estimated sampling
distribution (log scale for positive parameters, as fitted; covariate coefficients γ on their own
scale, named by the model's ``linear_params``), the value is recomputed under each draw and the
``(1 ∓ level)/2`` quantiles are reported. They cover the uncertainty of the estimates, not the
spread between customers; the first order's mean is taken as known.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodel.config import MAX_HORIZON, excerpt, horizon_message
from clvmodel.errors import ClvError
from clvmodel.models.channels import AcquisitionState, ChannelState
from clvmodel.uncertainty import parameter_draws

if TYPE_CHECKING:  # pragma: no cover
    from clvmodel.artifact import TrainedModel

__all__ = [
    "ALL",
    "OUTPUT_COLUMNS",
    "acquisition_table",
    "new_customer_purchases",
    "period_values",
    "purchase_model",
    "settings",
    "text_columns",
]

#: The channel of a row valued without one: the pooled model, every channel's customers together.
ALL = "all"
#: The value columns of :func:`acquisition_table`, after ``channel`` and the covariates.
OUTPUT_COLUMNS = [
    "expected_repeat_purchases",
    "expected_repeat_purchases_lower",
    "expected_repeat_purchases_upper",
    "first_order_value",
    "expected_order_value",
    "acquisition_value",
    "acquisition_value_lower",
    "acquisition_value_upper",
    "customers",
    "first_order_basis",
    "spend_basis",
]
#: ``first_order_basis`` values: the channel's observed mean first order, the mean spend per
#: order standing in for it (the model kept no first orders: trained without a customer table),
#: or unknown (no amounts).
OBSERVED, MEAN_SPEND, UNKNOWN = "observed", "mean_spend", "unknown"


# --- the model's pieces -----------------------------------------------------------------------


def purchase_model(trained: TrainedModel) -> Any:
    """The purchase model that forecasts a new customer: ``acquisition.purchase_model``, else the primary.

    Raises
    ------
    ClvError
        A subscription model (its new-customer value is ``clv_new_customer`` of ``clvmodel
        train``) or a model without a purchase model (historical only).
    """
    if getattr(trained, "subscription", False):
        raise ClvError(f"model {trained.name!r} is a subscription (sBG) model; its value of a new subscriber is "
                       "printed by clvmodel train (clv_new_customer), not by acquisition values")
    state: AcquisitionState | None = trained.acquisition
    if state is not None:
        if state.purchase_model not in trained.models:
            raise ClvError(f"model {trained.name!r}: its acquisition purchase model {state.purchase_model!r} is missing; "
                           "retrain it")
        return trained.models[state.purchase_model]
    if trained.purchase_model is None:
        raise ClvError(f"model {trained.name!r} has no purchase model (historical only), so it cannot forecast a new "
                       "customer; train it with bgnbd or pareto_nbd in models")
    return trained.purchase_model


def _design(model: Any) -> Any:
    """The covariate design of a covariate model; ``None`` for a plain one."""
    return getattr(model, "design_", None)


def _linear_names(model: Any) -> tuple[str, ...]:
    """The parameters sampled on their own scale (covariate coefficients γ), not on the log scale.

    The covariate models name them with ``linear_params`` (a method or a tuple); failing that,
    the ``life.*`` / ``trans.*`` names of the contract.
    """
    declared = getattr(model, "linear_params", None)
    if declared is not None:
        names = declared() if callable(declared) else declared
        return tuple(names)
    return tuple(k for k in (model.params_ or {}) if k.startswith(("life.", "trans.")))


def _draws(model: Any, draws: int, seed: int) -> list[dict[str, float]] | None:
    """Parameter draws of ``model``: :func:`clvmodel.uncertainty.parameter_draws` (which keeps a
    covariate model's ``linear_params()`` on their own scale); for a model that names ``life.*`` /
    ``trans.*`` coefficients without declaring them, the same normal with those not exponentiated."""
    linear = _linear_names(model)
    if not linear or callable(getattr(model, "linear_params", None)):
        return parameter_draws(model, draws, seed)  # which keeps a model's linear_params() linear
    if model.covariance_ is None or not model.params_:
        return None
    held = list(model.params_)
    cov = np.asarray(model.covariance_, dtype=float)
    if cov.shape != (len(held), len(held)) or not np.all(np.isfinite(cov)):
        return None
    names = sorted(held)  # as parameter_draws: the same draws whatever the order in memory
    order = [held.index(k) for k in names]
    cov = cov[np.ix_(order, order)]
    is_log = np.array([k not in linear for k in names])
    mean = np.array([model.params_[k] for k in names], dtype=float)
    mean[is_log] = np.log(mean[is_log])
    samples = np.random.default_rng(seed).multivariate_normal(mean, cov, size=draws, method="eigh")
    samples[:, is_log] = np.exp(samples[:, is_log])
    return [dict(zip(names, row)) for row in samples]


def _with_params(model: Any, params: dict[str, float]) -> Any:
    """A copy of ``model`` (design and all) at other parameters, without covariance."""
    rebuilt = copy.copy(model)
    rebuilt.params_ = params
    rebuilt.covariance_ = None
    return rebuilt


def _mean_spend(spend: Any) -> float:
    """E[M] = p v / (q − 1); NaN without a spend model or where it does not exist (q ≤ 1)."""
    if spend is None:
        return math.nan
    p, q, v = ((spend.params_ or {})[k] for k in ("p", "q", "v"))
    return p * v / (q - 1) if q > 1 else math.nan


def _expected_new(model: Any, z: np.ndarray | None, t: np.ndarray) -> np.ndarray:
    """E[X(t)] of a new customer at profile ``z`` (``None``: a plain model)."""
    if z is None:
        return np.asarray(model.expected_purchases_new(t), dtype=float)
    return np.asarray(model.expected_purchases_new(t, covariates=z), dtype=float)


def _encode(model: Any, profiles: list[dict[str, Any]], origin: str) -> list[np.ndarray | None]:
    """Each raw profile's encoded ``z`` for a covariate model; ``None`` each for a plain one."""
    design = _design(model)
    if design is None:
        return [None] * len(profiles)
    if not profiles:
        return []
    frame = pd.DataFrame([{name: values.get(name) for name in design.covariates} for values in profiles])
    encoded = design.encode(frame, origin)
    return [row for row in encoded]


def new_customer_purchases(trained: TrainedModel, profile: dict[str, Any] | None, periods: np.ndarray) -> np.ndarray:
    """E[X(t)] at each of ``periods`` for a customer acquired at ``t = 0`` with covariates ``profile``.

    Equation (9) of Fader, Hardie & Lee (2005) for BG/NBD (the family's own closed form
    otherwise), at the profile's parameters for a covariate model. Repeat purchases only: the
    first purchase, the acquisition itself, is not counted.

    Parameters
    ----------
    trained
        A :class:`~clvmodel.artifact.TrainedModel`; the model used is :func:`purchase_model`'s.
    profile
        Raw covariate values (``{"Gender": "F", "Channel": "web"}``); ignored by a plain model,
        required by a covariate model (``None`` there means the baseline, ``z = 0``).
    periods
        Times since acquisition in the model's time unit, any shape.

    Raises
    ------
    ClvError
        A covariate missing from ``profile`` or a level not seen in training (one line).
    """
    model = purchase_model(trained)
    t = np.asarray(periods, dtype=float)
    if _design(model) is None:
        return _expected_new(model, None, t)
    if profile is None:
        return _expected_new(model, np.zeros(len(_design(model).columns)), t)
    (z,) = _encode(model, [profile], "profile")
    return _expected_new(model, z, t)


# --- what is valued ---------------------------------------------------------------------------


@dataclass
class _Unit:
    """One output row: a channel (its profile mix) or one user profile, and its spend pieces."""

    channel: str
    shown: dict[str, Any]  # covariate values shown in the row (None: varies within the channel)
    profiles: list[tuple[dict[str, Any], float]]
    first_order: float | None
    spend: Any  # the Gamma-Gamma giving E[M]
    spend_basis: str  # "channel", "pooled" or "none"
    spend_key: str  # "" for the pooled model, else the channel whose own model it is
    customers: int | None
    extra: dict[str, Any] = field(default_factory=dict)  # passed-through columns (customer_id)


def _channels(trained: TrainedModel) -> dict[str, ChannelState]:
    """The trained channels; one ``all`` channel for a model trained without a customer table."""
    state: AcquisitionState | None = trained.acquisition
    if state is not None and state.channels:
        return dict(state.channels)
    purchase = purchase_model(trained)
    customers = getattr(purchase, "n_", None)
    return {ALL: ChannelState(customers=int(customers or 0), repeat_customers=0,
                              first_order_value=None, spend=None, profiles=[({}, 1.0)])}


def _pooled(trained: TrainedModel, channels: dict[str, ChannelState]) -> ChannelState:
    """The ``all`` channel: every channel's customers; first order their customer-weighted mean."""
    if ALL in channels:
        return channels[ALL]
    known = [(c.first_order_value, c.customers) for c in channels.values() if c.first_order_value is not None]
    weight = sum(n for _, n in known)
    first = sum(v * n for v, n in known) / weight if known and weight > 0 else None
    return ChannelState(customers=sum(c.customers for c in channels.values()), repeat_customers=0,
                        first_order_value=first, spend=None, profiles=[({}, 1.0)])


def _unit(trained: TrainedModel, name: str, channel: ChannelState, profiles: list[tuple[dict[str, Any], float]],
          shown: dict[str, Any], extra: dict[str, Any] | None = None) -> _Unit:
    spend, basis, key = channel.spend, "channel", name
    if spend is None:
        spend, basis, key = trained.spend_model, "pooled", ""
    if spend is None:
        basis = "none"
    return _Unit(name, shown, profiles, channel.first_order_value, spend, basis, key, channel.customers, extra or {})


def text_columns(trained: TrainedModel) -> tuple[str, ...]:
    """The columns of a profile file to read as text: the channel columns and the categorical
    covariates (a level ``01`` must stay ``01``, as the customer table was read in training)."""
    state: AcquisitionState | None = trained.acquisition
    design = _design(purchase_model(trained)) if state is not None else None
    kinds = design.kinds if design is not None else {}
    channel = [state.channel] if state is not None and state.channel else []
    return tuple(dict.fromkeys(["channel", *channel, *(c for c, k in kinds.items() if k == "categorical")]))


def _covariates(trained: TrainedModel) -> list[str]:
    state: AcquisitionState | None = trained.acquisition
    return list(state.covariates) if state is not None else []


def _default_units(trained: TrainedModel) -> list[_Unit]:
    """One unit per trained channel, its observed covariate mix as its profiles."""
    covariates = _covariates(trained)
    units = []
    for name, channel in _channels(trained).items():
        profiles = channel.profiles or [({}, 1.0)]
        shown = {}
        for covariate in covariates:
            values = {repr(values.get(covariate)) for values, _ in profiles}
            shown[covariate] = profiles[0][0].get(covariate) if len(values) == 1 else None
        units.append(_unit(trained, name, channel, profiles, shown))
    return units


def _profile_units(trained: TrainedModel, profiles: pd.DataFrame, origin: str) -> list[_Unit]:
    """One unit per row of a user's profile table (``channel`` optional, then the covariates)."""
    if not isinstance(profiles, pd.DataFrame):
        raise ClvError(f"{origin}: profiles must be a table (a pandas DataFrame), got {type(profiles).__name__}")
    if len(profiles) == 0:
        raise ClvError(f"{origin}: no profiles to value; give one row per profile (channel and covariates)")
    state: AcquisitionState | None = trained.acquisition
    channels = _channels(trained)
    covariates = _covariates(trained)
    model = purchase_model(trained)
    design = _design(model)
    needed = list(design.covariates) if design is not None else []
    channel_column = "channel" if "channel" in profiles.columns else (
        state.channel if state is not None and state.channel and state.channel in profiles.columns else None)
    frame = profiles.reset_index(drop=True)
    if channel_column is not None:
        # An empty channel is the pooled customer, as a row of a table without the column.
        names = frame[channel_column].astype(object)
        names = names.where(names.notna(), ALL).astype(str).str.strip().replace("", ALL)
        names = names.map(lambda name: _match_channel(name, channels))
        unknown = sorted(set(names) - set(channels) - {ALL})
        if unknown:
            raise ClvError(f"{origin}: unknown channel {excerpt(unknown[0], 40)}; the model's channels are "
                           f"{', '.join(channels)}")
        # The channel is also a covariate of the model: a row that names its channel needs not repeat it.
        if state is not None and state.channel in needed and state.channel not in frame.columns:
            frame = frame.assign(**{state.channel: names.where(names != ALL, None)})
        elif state is not None and state.channel and state.channel != channel_column and state.channel in frame.columns:
            given = frame[state.channel].astype(object)
            other = given.where(given.notna(), ALL).astype(str).str.strip().map(lambda n: _match_channel(n, channels))
            clash = (names != ALL) & (other != ALL) & (names != other)
            if clash.any():
                i = int(np.flatnonzero(clash.to_numpy())[0])
                raise ClvError(f"{origin}: row {i + 1} has channel {excerpt(names.iloc[i], 40)} but {state.channel} "
                               f"{excerpt(given.iloc[i], 40)}; give one channel per row")
    else:
        names = pd.Series([ALL] * len(frame))
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise ClvError(f"{origin}: no column {absent[0]!r}; the model's covariates are {', '.join(needed)}"
                       + (" (and an optional channel column)" if channels else ""))
    shown = [c for c in dict.fromkeys([*covariates, *needed]) if c in frame.columns]
    rows = [{c: _plain(v) for c, v in record.items()} for record in frame[shown].to_dict("records")]
    _encode(model, rows, origin)  # every row's covariates checked here, before anything is valued
    keep = [c for c in ("customer_id",) if c in frame.columns]
    ids = {c: frame[c].tolist() for c in keep}
    units = []
    for i, name in enumerate(names):
        channel = channels[name] if name in channels else _pooled(trained, channels)
        extra = {c: ids[c][i] for c in keep}
        units.append(_unit(trained, name, channel, [(rows[i], 1.0)], dict(rows[i]), extra))
    return units


def _match_channel(name: str, channels: dict[str, ChannelState]) -> str:
    """The trained channel ``name`` stands for: itself, or the one of equal number (a channel
    column of numbers saved as ``1`` and read back as ``1.0``)."""
    if name in channels or name == ALL:
        return name
    try:
        number = float(name)
    except ValueError:
        return name
    for known in channels:
        try:
            if float(known) == number:
                return known
        except ValueError:
            continue
    return name


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- the numbers ------------------------------------------------------------------------------


def settings(trained: TrainedModel, horizon: Any = None, discount_rate: Any = None, margin: Any = None) -> tuple[int, float, float]:
    """``horizon, discount_rate, margin``: the given ones, else the model's CLV settings; checked.

    Raises
    ------
    ClvError
        One line naming the setting: not a finite number, a horizon that is not a whole number of
        periods in ``1..`` 100 years, a negative discount rate, a margin outside ``(0, 1]``.
    """
    clv = getattr(trained, "clv", None) or {}
    values = {"horizon": clv.get("horizon") if horizon is None else horizon,
              "discount rate": clv.get("discount_rate", 0.0) if discount_rate is None else discount_rate,
              "margin": clv.get("margin", 1.0) if margin is None else margin}
    numbers = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise ClvError(f"{name} must be a finite number, got {excerpt(value)}")
        numbers[name] = number
    unit = getattr(trained, "time_unit", None)
    if not numbers["horizon"].is_integer() or numbers["horizon"] < 1:
        raise ClvError(f"horizon must be a whole number of periods > 0, got {values['horizon']}; use e.g. 52")
    if numbers["horizon"] > MAX_HORIZON.get(unit or "day", MAX_HORIZON["day"]):
        raise ClvError(horizon_message(values["horizon"], unit))
    if numbers["discount rate"] < 0:
        raise ClvError(f"discount rate must be >= 0 per period, got {values['discount rate']}; use 0 for none")
    if not 0 < numbers["margin"] <= 1:
        raise ClvError(f"margin must be in (0, 1], got {values['margin']}; use the share of revenue kept, e.g. 0.3")
    return int(numbers["horizon"]), numbers["discount rate"], numbers["margin"]


def _increments(model: Any, zs: list[np.ndarray | None], horizon: int) -> np.ndarray:
    """``E[X(k)] − E[X(k−1)]``, k = 1..H, for each distinct profile: shape ``(profiles, H)``."""
    t = np.arange(1, horizon + 1, dtype=float)
    cumulative = np.vstack([_expected_new(model, z, t) for z in zs]) if zs else np.empty((0, horizon))
    return np.diff(cumulative, axis=1, prepend=0.0)  # E[X(0)] = 0


#: Distinct covariate profiles valued in one call: each costs one forecast per interval draw
#: (about 1 s at the default 1,000 draws), and the REST server cannot stop a request once started.
MAX_PROFILES = 200


def _finite_profile(model: Any, z: np.ndarray) -> bool:
    """Whether the plain model at profile ``z`` has finite, positive parameters."""
    params = model.at(z).params_ or {}
    return all(np.isfinite(v) and v > 0 for v in params.values())


@dataclass
class _Plan:
    """The distinct profiles of all units and each unit's share of each."""

    zs: list[np.ndarray | None]
    shares: np.ndarray  # (units, distinct profiles), rows sum to 1


def _plan(model: Any, units: list[_Unit], origin: str) -> _Plan:
    if _design(model) is None:  # a plain model: one purchase curve for every profile
        return _Plan([None], np.ones((len(units), 1)))
    distinct: dict[tuple[float, ...], int] = {}
    zs: list[np.ndarray | None] = []
    entries = []
    for u, unit in enumerate(units):
        encoded = _encode(model, [values for values, _ in unit.profiles], origin)
        for z, (_, share) in zip(encoded, unit.profiles):
            key = tuple(np.asarray(z, dtype=float).tolist())
            if key not in distinct:
                distinct[key] = len(zs)
                zs.append(np.asarray(z, dtype=float))
            entries.append((u, distinct[key], float(share)))
    if len(zs) > MAX_PROFILES:
        raise ClvError(
            f"{origin}: {len(zs):,} distinct covariate profiles (at most {MAX_PROFILES:,}: each costs one forecast per "
            "interval draw); value fewer at a time, or group a numeric covariate's values"
        )
    for z in zs:
        if z is not None and not _finite_profile(model, z):
            raise ClvError(
                f"{origin}: the profile {', '.join(f'{c}={v:g}' for c, v in zip(_design(model).columns, z))} gives "
                "no finite model parameters (a covariate far outside the values seen in training)"
            )
    shares = np.zeros((len(units), len(zs)))
    for u, j, share in entries:
        shares[u, j] += share
    totals = shares.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ClvError(f"{origin}: a channel has no customer profiles with a positive share; retrain the model")
    return _Plan(zs, shares / totals)


def _first_orders(units: list[_Unit], means: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each unit's first order value and its basis: observed, else the mean spend standing in."""
    values, bases = np.empty(len(units)), []
    for i, unit in enumerate(units):
        if unit.first_order is not None:
            values[i], basis = unit.first_order, OBSERVED
        elif np.isfinite(means[i]):
            values[i], basis = means[i], MEAN_SPEND
        else:
            values[i], basis = math.nan, UNKNOWN
        bases.append(basis)
    return values, bases


def _values(increments: np.ndarray, plan: _Plan, means: np.ndarray, first: np.ndarray, weights: np.ndarray,
            margin: float) -> tuple[np.ndarray, np.ndarray]:
    """E[X(H)] and the acquisition value of every unit.

    Unit by unit, with 1-D sums: a row's value does not depend, in its last bit, on which other rows
    are valued with it (a matrix product may order its additions by the shape).
    """
    purchases, discounted = np.empty(len(plan.shares)), np.empty(len(plan.shares))
    for u, shares in enumerate(plan.shares):
        steps = np.zeros(increments.shape[1])
        for j in np.flatnonzero(shares):
            steps += shares[j] * increments[j]  # the unit's share-weighted purchase increments
        purchases[u] = steps.sum()
        discounted[u] = (steps * weights).sum()
    return purchases, margin * (first + means * discounted)


def _valuate(trained: TrainedModel, units: list[_Unit], *, horizon: int, discount_rate: float, margin: float, level: float,
             draws: int, seed: int, origin: str) -> pd.DataFrame:
    model = purchase_model(trained)
    # Rows of one channel and profile are valued once (a request of 100,000 new customers has a
    # handful of distinct profiles); each row's numbers do not depend on the other rows.
    rows_of: dict[tuple[str, str, str], int] = {}
    which = np.array([rows_of.setdefault((u.channel, repr(u.profiles), u.spend_key), len(rows_of)) for u in units],
                     dtype=np.intp)
    requested, units = units, [units[i] for i in np.unique(which, return_index=True)[1]]
    plan = _plan(model, units, origin)
    weights = (1.0 + discount_rate) ** -np.arange(1, horizon + 1, dtype=float)
    means = np.array([_mean_spend(u.spend) for u in units])
    first, bases = _first_orders(units, means)
    mean_spend_first = np.array([b == MEAN_SPEND for b in bases])
    purchases, value = _values(_increments(model, plan.zs, horizon), plan, means, first, weights, margin)
    lower = {name: np.full(len(units), np.nan) for name in ("purchases", "value")}
    upper = {name: np.full(len(units), np.nan) for name in ("purchases", "value")}
    purchase_draws = _draws(model, draws, seed) if draws else None
    if purchase_draws is not None:
        # Each spend model drawn once, with a seed of its own that does not depend on which rows
        # are valued: the pooled model seed + 1, the k-th channel (sorted) seed + 2 + k.
        names = sorted(_channels(trained))
        spends = {u.spend_key: u.spend for u in units if u.spend is not None}
        spend_draws = {key: _draws(spend, draws, seed + 1 + (names.index(key) + 1 if key in names else 0))
                       for key, spend in spends.items()}
        sampled_purchases = np.empty((draws, len(units)))
        sampled_values = np.empty((draws, len(units)))
        for d, params in enumerate(purchase_draws):
            drawn = _with_params(model, params)
            means_d = np.array([
                math.nan if u.spend is None else
                (_mean_spend(_with_params(u.spend, spend_draws[u.spend_key][d])) if spend_draws[u.spend_key] is not None
                 else means[i])
                for i, u in enumerate(units)
            ])
            first_d = np.where(mean_spend_first, means_d, first)
            sampled_purchases[d], sampled_values[d] = _values(
                _increments(drawn, plan.zs, horizon), plan, means_d, first_d, weights, margin)
        quantiles = [(1 - level) / 2, (1 + level) / 2]
        with np.errstate(invalid="ignore"):
            lower["purchases"], upper["purchases"] = _quantiles(sampled_purchases, quantiles)
            lower["value"], upper["value"] = _quantiles(sampled_values, quantiles)
        unvalued = ~np.isfinite(value)
        lower["value"][unvalued] = upper["value"][unvalued] = math.nan
    covariates = _covariates(trained)
    rows = []
    for unit, i in zip(requested, which):
        row: dict[str, Any] = {**unit.extra, "channel": unit.channel}
        row.update({c: unit.shown.get(c) for c in covariates if c != "channel"})
        row.update({
            "expected_repeat_purchases": purchases[i],
            "expected_repeat_purchases_lower": lower["purchases"][i],
            "expected_repeat_purchases_upper": upper["purchases"][i],
            "first_order_value": first[i],
            "expected_order_value": means[i],
            "acquisition_value": value[i],
            "acquisition_value_lower": lower["value"][i],
            "acquisition_value_upper": upper["value"][i],
            "customers": unit.customers,
            "first_order_basis": bases[i],
            "spend_basis": unit.spend_basis,
        })
        rows.append(row)
    out = pd.DataFrame(rows)
    if "customers" in out.columns:
        out["customers"] = out["customers"].astype("Int64")
    return out


def _quantiles(samples: np.ndarray, quantiles: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column quantiles ignoring draws without a value (a spend draw with q ≤ 1)."""
    bad = ~np.isfinite(samples)
    if bad.any():
        samples = np.where(bad, np.nan, samples)
        out = np.full((2, samples.shape[1]), np.nan)
        usable = (~bad).sum(axis=0) > 0
        if usable.any():
            out[:, usable] = np.nanquantile(samples[:, usable], quantiles, axis=0)
        return out[0], out[1]
    q = np.quantile(samples, quantiles, axis=0)
    return q[0], q[1]


def _interval_settings(trained: TrainedModel, level: Any, draws: Any) -> tuple[float, int]:
    try:
        level_f, draws_f = float(level), float(draws)
    except (TypeError, ValueError, OverflowError):
        level_f = draws_f = math.nan
    if not (math.isfinite(level_f) and 0 < level_f < 1):
        raise ClvError(f"interval level must be in (0, 1), got {excerpt(level)}; use e.g. 0.9")
    if not (math.isfinite(draws_f) and draws_f.is_integer() and 0 <= draws_f <= 100_000):
        raise ClvError(f"draws must be a whole number in 0..100000, got {excerpt(draws)}; use e.g. 1000 (0: no intervals)")
    return level_f, int(draws_f)


def acquisition_table(
    trained: TrainedModel,
    profiles: pd.DataFrame | None = None,
    *,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    level: float = 0.9,
    draws: int = 1000,
    seed: int = 0,
    origin: str = "profiles",
) -> pd.DataFrame:
    """The acquisition value of a new customer per channel, or per given profile, with intervals.

    ``margin × (E[first order value] + Σ_{k=1..H} (E[X(k)] − E[X(k−1)]) × E[M] / (1 + d)^k)``,
    see the module docstring for each term and its equation. For BG/NBD with ``a ≤ 1`` the
    undiscounted value over an unbounded horizon is infinite: ``horizon`` (and ``discount_rate``)
    bound it.

    Parameters
    ----------
    trained
        A :class:`~clvmodel.artifact.TrainedModel` (:func:`clvmodel.load_model`).
    profiles
        ``None``: one row per channel seen in training, valued over the channel's observed mix of
        covariate profiles (a model trained without a customer table has one channel, ``all``).
        Else one row per profile: an optional ``channel`` column (or the model's channel column),
        the model's covariates, and optionally ``customer_id`` (passed through). A row without a
        channel (no column, or an empty value) is valued with the pooled spend model and the customer-weighted mean first order (unless the channel is also a covariate: then the row needs its value, like any covariate's).
    horizon, discount_rate, margin
        ``H`` whole periods of the model's time unit, ``d`` per period, margin in ``(0, 1]``;
        ``None``: the model's CLV settings.
    level, draws, seed
        Central interval level, parameter draws (0: no intervals, NaN bounds) and seed.
    origin
        Names the profiles in messages (a file name).

    Returns
    -------
    pandas.DataFrame
        One row per channel or profile: ``channel``, the covariates (a channel's row shows a
        covariate only where it is the same for all the channel's customers; empty: the observed
        mix), then :data:`OUTPUT_COLUMNS`: ``expected_repeat_purchases`` (E[X(H)], the first purchase
        not counted) and bounds, ``first_order_value``, ``expected_order_value`` (E[M]),
        ``acquisition_value`` and bounds, ``customers`` (the channel's customers in training),
        ``first_order_basis`` (``observed``; ``mean_spend`` when the model kept no first orders and
        E[M] stands in; ``unknown``) and ``spend_basis`` (``channel``, ``pooled``, ``none``). Without
        amounts (no spend model) the value columns are NaN and the purchases are still given.

    Raises
    ------
    ClvError
        One line: a bad setting, a missing covariate, a level or a channel not seen in training,
        a subscription or historical-only model.
    """
    horizon_i, rate, margin_f = settings(trained, horizon, discount_rate, margin)
    level_f, draws_i = _interval_settings(trained, level, draws)
    units = _default_units(trained) if profiles is None else _profile_units(trained, profiles, origin)
    return _valuate(trained, units, horizon=horizon_i, discount_rate=rate, margin=margin_f, level=level_f,
                    draws=draws_i, seed=int(seed), origin=origin)


def period_values(
    trained: TrainedModel,
    channel: str | None = None,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> np.ndarray:
    """A new customer's value period by period, for payback: shape ``(H + 1,)``.

    Period 0 is ``margin × first order value`` (not discounted); period ``k = 1..H`` is
    ``margin × (E[X(k)] − E[X(k−1)]) × E[M] / (1 + d)^k`` over the channel's profile mix. Their sum
    is :func:`acquisition_table`'s ``acquisition_value`` for the channel.

    Parameters
    ----------
    channel
        A trained channel; ``None`` or ``"all"``: the pooled customer, every channel's customers
        together (their profile mixes weighted by customers, the pooled spend model, the
        customer-weighted mean first order).
    horizon, discount_rate, margin
        As in :func:`acquisition_table`; ``None``: the model's CLV settings.
    """
    horizon_i, rate, margin_f = settings(trained, horizon, discount_rate, margin)
    channels = _channels(trained)
    name = ALL if channel is None else str(channel)
    if name in channels:
        units = [u for u in _default_units(trained) if u.channel == name]
    elif name == ALL:
        pooled = _pooled(trained, channels)
        profiles = [(values, share * max(c.customers, 1)) for c in channels.values()
                    for values, share in (c.profiles or [({}, 1.0)])]
        units = [_unit(trained, ALL, pooled, profiles, {})]
    else:
        raise ClvError(f"unknown channel {excerpt(name, 40)}; the model's channels are {', '.join(channels)}")
    model = purchase_model(trained)
    unit = units[0]
    plan = _plan(model, [unit], "model")
    increments = _increments(model, plan.zs, horizon_i)
    steps = np.zeros(horizon_i)
    for j in np.flatnonzero(plan.shares[0]):
        steps += plan.shares[0, j] * increments[j]
    mean = _mean_spend(unit.spend)
    first, _ = _first_orders([unit], np.array([mean]))
    weights = (1.0 + rate) ** -np.arange(1, horizon_i + 1, dtype=float)
    return margin_f * np.concatenate([[first[0]], steps * mean * weights])
