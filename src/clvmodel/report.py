"""What ``clvmodel train`` and ``clvmodel score`` print: results rendered as plain text.

The CLI parses its options, calls one library function, renders the result here and sets the
exit code; nothing here computes a forecast or touches a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clvmodel.models import registry

__all__ = ["render_train", "render_subscription", "render_score", "render_acquisition", "parameter_meaning",
           "HOLDOUT_METRICS"]

#: One line per holdout metric, as ``clvmodel train`` prints them under the leaderboard.
HOLDOUT_METRICS = (
    ("pct_error", "total predicted vs actual over the holdout, % (the aggregate: is the forecast total right?)"),
    ("rmse", "root mean squared error per customer (weighs the big misses on heavy buyers)"),
    ("mae", "mean absolute error per customer (the typical miss on one customer)"),
    ("spearman", "rank correlation of predicted and actual per customer (1 = same order)"),
    ("top20_share", "share of the actual holdout total held by the 20 % the model ranks highest (targeting)"),
)


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.{digits}f}"

def render_subscription(result) -> str:  # noqa: ANN001 - SubscriptionResult, imported lazily
    """The summary ``clvmodel train`` prints for an sBG config."""
    model = result.model.retention_model
    settings, m = result.config.subscriptions, result.metrics
    lines = [
        f"clvmodel train: {result.config.name} (shifted-beta-geometric, {result.customers:,} customers, {settings.period}s)",
        f"  {model.name:<12} alpha {model.params_['alpha']:.4f} (se {model.standard_errors_['alpha']:.4f}), "
        f"beta {model.params_['beta']:.4f} (se {model.standard_errors_['beta']:.4f}); "
        f"log-likelihood {model.log_likelihood_:,.2f}",
        f"  value        DERL {m[f'{model.name}.derl']:.4f} {settings.period}s at discount {result.config.clv_settings().discount_rate:.8g} per {settings.period}; "
        f"a new customer is worth {m[f'{model.name}.clv_new_customer']:,.2f} (fee {settings.fee:g}, margin {result.config.clv.margin:g})",
    ]
    if result.projection is not None:
        lines.append(f"  projection (fitted on {settings.period}s 0-{settings.fitted_periods}; later rows are the holdout)")
        table = result.projection.assign(error=lambda f: (100 * f["error"]).round(2))
        lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.1f}").replace("\n", "\n    ").join(["    ", ""]))
    lines.append(f"  model        {result.model_dir}")
    lines.append(f"  run          {result.run_id or 'not tracked'}")
    return "\n".join(lines)

def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def parameter_meaning(name: str | None, params: dict[str, float], unit: str) -> list[str]:
    """The primary purchase model's parameters in the data's own terms (empty when there is no reading).

    BG/NBD and MBG/NBD: purchase interval 1/E[λ] = α/r while active, drop-out E[p] = a/(a+b) after
    each purchase (MBG/NBD: also right after the first); Pareto/NBD: interval α/r, mean lifetime
    β/(s−1) when s > 1 and the median β(2^(1/s) − 1) always; BG/BB: E[p] = α/(α+β) per opportunity,
    E[θ] = γ/(γ+δ) drop-out per opportunity.
    """
    p = {k: float(v) for k, v in (params or {}).items()}
    keys = set(p)
    # Read from the parameters a family has (and, for MBG/NBD's drop-out at the first purchase, its
    # class), never from its name: the registry is the one place that knows names.
    first = bool(name) and name in registry.names() and getattr(registry.family_class(name), "dropout_at_first_purchase", False)
    lines: list[str] = []
    if {"r", "alpha"} <= keys and p["r"] > 0:
        lines.append(f"while active, a customer buys every 1/E[λ] = alpha/r = {p['alpha'] / p['r']:,.1f} {unit}s "
                     "on average")
    if {"r", "a", "b"} <= keys:
        after = "each purchase, the first included" if first else "each repeat purchase"
        lines.append(f"after {after}, E[p] = a/(a+b) = {_pct(p['a'] / (p['a'] + p['b']))} of customers drop out")
    if {"s", "beta"} <= keys and "b" not in keys and p["s"] > 0:  # Pareto/NBD (GGom/NBD's lifetime has a shape b)
        median = p["beta"] * (2 ** (1 / p["s"]) - 1)
        mean = (f"mean lifetime beta/(s-1) = {p['beta'] / (p['s'] - 1):,.1f} {unit}s" if p["s"] > 1
                else f"long-tailed lifetimes (s = {p['s']:.2f} <= 1): no finite mean")
        lines.append(f"{mean}; half the customers stay active beyond beta(2^(1/s) - 1) = {median:,.1f} {unit}s")
    if {"alpha", "beta", "gamma", "delta"} <= keys:
        lines.append(f"while active, a customer buys at E[p] = alpha/(alpha+beta) = "
                     f"{_pct(p['alpha'] / (p['alpha'] + p['beta']))} of the {unit}s; E[θ] = gamma/(gamma+delta) = "
                     f"{_pct(p['gamma'] / (p['gamma'] + p['delta']))} drop out each {unit}")
    return lines


def _spend_meaning(params: dict[str, float]) -> str | None:
    """Gamma-Gamma's mean spend per order p·v/(q−1), when q > 1."""
    if not {"p", "q", "v"} <= (params or {}).keys():
        return None
    p, q, v = (float(params[k]) for k in ("p", "q", "v"))
    if q <= 1:
        return f"spend per order is long-tailed (q = {q:.2f} <= 1): no finite mean"
    return (f"a customer's mean spend per order is {p * v / (q - 1):,.2f} on average, p*v/(q-1); a customer's own "
            "average is pulled toward it the fewer orders they have")


def _meaning_lines(result, per_row: np.ndarray, ok: np.ndarray) -> list[str]:  # noqa: ANN001 - TrainResult
    """The ``in words`` block: what the primary and spend models' parameters say about the customers."""
    model, unit = result.model, result.config.time_unit
    lines: list[str] = []
    primary = model.primary
    if primary is not None and primary in model.models:
        lines += [f"{primary}: {line}" for line in parameter_meaning(primary, model.models[primary].params_, unit)]
        scores = result.scores
        if "p_alive" in scores.columns and ok.any():
            alive = scores["p_alive"].to_numpy(dtype=float)[ok]
            weights = per_row[ok]
            if np.isfinite(alive).all() and weights.sum() > 0:
                cut = result.rfm.calibration_end or result.rfm.observation_end
                when = "the calibration end" if result.rfm.split else "the end of the data"
                lines.append(f"{primary}: {_pct(float(np.average(alive, weights=weights)))} of customers are still "
                             f"active at {when}{f' {cut}' if cut else ''} (mean P(alive) of the {weights.sum():,.0f} "
                             "scored)")
    spend = model.spend_model
    said = _spend_meaning(getattr(spend, "params_", None) or {}) if spend is not None else None
    if said:
        lines.append(f"{getattr(spend, 'name', 'spend')}: {said}")
    return lines


def render_train(result) -> str:  # noqa: ANN001 - TrainResult, imported lazily
    """The readable summary ``clvmodel train`` prints."""
    lines: list[str] = []
    load, summary = result.load, result.rfm.summary
    lines.append(f"clvmodel train: {result.config.name}")
    lines.append(f"  data      {load.describe()}")
    cut = result.rfm.calibration_end or result.rfm.observation_end
    weights = summary["weights"] if "weights" in summary.columns else 1
    as_of = f" as of {cut}" if cut else ""
    lines.append(
        f"  rfm       {load.customers if cut is None else len(summary):,} customers{as_of} ({result.config.time_unit}s); "
        f"{int((summary['frequency'] * weights).sum()):,} repeat purchases"
        + (
            f"; holdout{' to ' + str(result.rfm.observation_end) if cut else ''}: "
            f"{int(summary['frequency_holdout'].sum()):,} repeat purchases"
            if result.rfm.split
            else ""
        )
    )
    if result.rfm.transactions_after_observation_end:
        lines.append(
            f"            {result.rfm.transactions_after_observation_end:,} transactions after the observation end "
            f"{result.rfm.observation_end} not used"
        )
    if result.rfm.customers_after_calibration or result.rfm.customers_after_observation_end:
        lines.append(
            f"            customers: {len(summary):,} summarised + {result.rfm.customers_after_calibration:,} first "
            f"bought after the calibration end + {result.rfm.customers_after_observation_end:,} only after the "
            f"observation end = {result.load.customers:,} read"
        )
    customer_report = getattr(result, "customer_report", None)
    for i, line in enumerate(customer_report.lines() if customer_report is not None else []):
        lines.append(f"  {'customers' if i == 0 else '':<9} {line}")
    lines.append("  parameters")
    for name, model in result.model.models.items():
        params = ", ".join(
            f"{k} {_fmt(v)}" + (f" (se {_fmt(model.standard_errors_.get(k))})" if model.standard_errors_ else "")
            for k, v in (model.params_ or {}).items()
        )
        ll = f"; log-likelihood {_fmt(model.log_likelihood_, 1)}" if model.log_likelihood_ is not None else ""

        lines.append(f"    {name:<12} {params}{ll}")
    spend = result.model.spend_model
    if spend is not None:
        lines.append(
            f"    {'':<12} corr(frequency, spend) among repeat customers {spend.correlation_:.4f}"
            + (f"; {spend.excluded_} zero-spend repeat customers not in the fit" if spend.excluded_ else "")
        )
    rule = getattr(result.model.challenger, "inner_cut_rule_", None)
    if rule:
        lines.append(f"    {'challenger':<12} {rule}")
    scores = result.scores
    # A published summary's rows may each stand for many customers (its weights).
    per_row = summary["weights"].to_numpy() if "weights" in summary.columns else np.ones(len(scores))
    ok = (scores["status"] == "ok").to_numpy()
    for i, line in enumerate(_meaning_lines(result, per_row, ok)):
        lines.append(f"  {'in words' if i == 0 else '':<9} {line}")
    lines.append(f"  predicted_clv from {result.model.selection['reason']}")
    if result.calibration_table is not None:  # a holdout (the leaderboard may list failed models alone)
        lines.append("  holdout")
        board = result.leaderboard[result.leaderboard["target"] != ""].copy()
        lines.append(
            board.to_string(
                index=False,
                float_format=lambda v: f"{v:,.3f}",
                columns=["model", "target", "total_actual", "total_predicted", "pct_error", "rmse", "mae", "spearman", "top20_share"],
            ).replace("\n", "\n    ").join(["    ", ""])
        )
        lines.append("  the metrics, per target (purchases: repeat purchases; spend: their value) over the holdout:")
        lines += [f"    {name:<12} {meaning}" for name, meaning in HOLDOUT_METRICS]
        lines.append(
            f"    look first at pct_error on {'spend' if 'monetary_value' in summary.columns else 'purchases'}: "
            "a forecast whose total is off misstates every sum built on it; "
            + (f"then at the selection metric ({result.model.selection['metric']})"
               if result.model.selection.get("metric") else "then at mae")
            + " and, for targeting, top20_share"
        )
        lines.append("  holdout purchases by calibration frequency (mean per customer)")
        lines.append(
            result.calibration_table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
            .replace("\n", "\n    ")
            .join(["    ", ""])
        )
    customers, span = per_row[ok].sum(), result.config.clv_settings().describe()
    if "monetary_value" in summary.columns:
        total = float((scores["predicted_clv"].to_numpy() * per_row)[ok].sum())
        lines.append(f"  clv       {customers:,.0f} customers, {span}: total {total:,.2f}, mean {total / customers:,.2f}")
    else:
        total = float((scores["expected_purchases"].to_numpy() * per_row)[ok].sum())
        lines.append(
            f"  clv       no amounts in the data, so no value: {customers:,.0f} customers are expected to make "
            f"{total:,.1f} purchases over the {span} (mean {total / customers:,.3f})"
        )
    lines.extend(_segment_lines(result.model))
    acquisition = getattr(result, "tables", {}).get("acquisition.csv")
    if acquisition is not None:
        lines.extend(_acquisition_lines(result, acquisition))
    for name, reason in result.failed.items():
        lines.append(f"  {result.failed_status.get(name, 'not fitted')}  {name}: {reason}")
    for message in result.warnings:
        lines.append(f"  warning   {message}")
    lines.append(f"  model     {result.model_dir}")
    lines.append(f"  run       {result.run_id or 'not tracked'}")
    return "\n".join(lines)

def _segment_lines(model) -> list[str]:  # noqa: ANN001 - TrainedModel
    """The segment boundaries fixed on the training customers, as every scored file will use them."""
    bounds, settings = model.segment_boundaries, model.segments
    if not bounds:
        return []
    basis = "predicted_clv" if bounds.get("predicted_clv") else "expected_purchases"
    what, digits = ("CLV", 2) if basis == "predicted_clv" else ("expected purchases", 3)
    tiers = ", ".join(f"{name} from {bounds[basis][key]:,.{digits}f}" for key, name in
                      (("vip", "VIP"), ("high", "high"), ("medium", "medium")))
    return [f"  segments  fixed on these customers, for every scored file: {what} {tiers}, else low; "
            f"P(alive) below {settings['at_risk_below']:g} at_risk, below {settings['lost_below']:g} lost"]


def _acquisition_lines(result, table: pd.DataFrame) -> list[str]:  # noqa: ANN001 - TrainResult
    """The new-customer table: acquisition value beside the remaining CLV, one row per channel."""
    config, state = result.config, result.model.acquisition
    used = config.clv_settings()
    span = f"{used.periods} {config.time_unit}s"
    lines = [
        f"  new customers by channel (purchase model {state.purchase_model}; margin {config.clv.margin:g}, "
        f"{used.describe()})",
        f"            acquisition_value: what a NEW customer is worth, first order + {span} of repeat purchases "
        "from acquisition (compare with CAC)",
        f"            remaining_clv_mean: the channel's EXISTING customers' next {span}, after their history "
        "(retention, segments; not what CAC buys)",
    ]
    shown = pd.DataFrame({
        "channel": table["channel"],
        "customers": table["customers"].map(lambda v: f"{int(v):,}"),
        "first_order": table["first_order_value"].map(lambda v: f"{v:,.2f}"),
        f"E[X({used.periods})]": table["expected_repeat_purchases"].map(lambda v: f"{v:,.3f}"),
        "E[M]": table["expected_order_value"].map(lambda v: f"{v:,.2f}"),
        "acquisition_value": table["acquisition_value"].map(lambda v: f"{v:,.2f}"),
        "interval": [f"{lo:,.2f} to {hi:,.2f}" if np.isfinite(lo) else "-"
                     for lo, hi in zip(table["acquisition_value_lower"], table["acquisition_value_upper"])],
        "remaining_clv_mean": table["remaining_clv_mean"].map(lambda v: f"{v:,.2f}"),
        "spend": table["spend_basis"],
    })
    lines.append(shown.to_string(index=False).replace("\n", "\n    ").join(["    ", ""]))
    return lines


def render_score(status: pd.DataFrame, by: pd.DataFrame, source, output: Path, *, ranked: bool = False) -> str:  # noqa: ANN001
    """The summary ``clvmodel score`` prints, from counts read back from the written file; ``ranked``:
    the model has no fixed segment boundaries (saved before them), so its tiers are ranks in this file."""
    counts = dict(zip(status["status"], status["n"]))
    ok = int(counts.pop("ok", 0))
    kind = "RFM table" if source.kind == "rfm" else f"transactions summarised as of {source.as_of}"
    if source.ignored_transactions:
        kind += f" ({source.ignored_transactions:,} transactions after that date not used)"
    refused = sum(counts.values())
    # A model without amounts (a summary of counts) gives no value: NaN CLV, segments by purchases.
    valued = bool(len(by)) and by["sum"].notna().any()
    total = float(by["sum"].sum()) if valued else 0.0
    lines = [
        f"score: input read as {kind}",
        f"  customers scored {ok:,}; not scored {refused:,}"
        + (f" ({', '.join(f'{k} {int(v):,}' for k, v in counts.items())})" if refused else ""),
        f"  predicted CLV total {total:,.2f}, mean {total / ok if ok else float('nan'):,.2f}" if valued or not ok
        else "  predicted CLV: none (the model has no amounts; segments go by expected purchases)",
        "  by segment:" if not ranked else
        "  by segment (ranked within this file: the model was saved before segment boundaries were fixed at "
        "training; retrain it to fix them):",
    ]
    for segment in [s for s in ("VIP", "high", "medium", "low", "at_risk", "lost") if s in by.index]:
        row = by.loc[segment]
        money = f"  total {row['sum']:>14,.2f}  mean {row['mean']:>10,.2f}" if valued else ""
        lines.append(f"    {segment:<8} {int(row['size']):>8,} customers{money}")
    lines.append(f"  written to {output}")
    return "\n".join(lines)


def render_acquisition(table: pd.DataFrame, *, model: str, time_unit: str, horizon: int, discount_rate: float,
                       margin: float, level: float, output: Path | None = None, channel_column: str | None = None) -> str:
    """The short table ``clvmodel acquisition`` prints (:func:`clvmodel.acquisition.acquisition_table`'s rows);
    ``channel_column``, the model's channel covariate, is shown as the channel only."""
    shown = 20
    # The covariates are the columns between channel and the values; a row shows those it sets.
    names = list(table.columns)
    covariates = names[names.index("channel") + 1: names.index("expected_repeat_purchases")]

    def label(row: pd.Series) -> str:
        given = [f"{c}={row[c]}" for c in covariates if c != channel_column and not pd.isna(row[c])]
        return " ".join([str(row["channel"]), *given])[:28]

    lines = [
        f"acquisition: value of a new customer, model {model!r}, horizon {horizon} {time_unit}s, discount rate "
        f"{discount_rate:g} per {time_unit}, margin {margin:g}",
        f"  {'channel':<28} {'repeat purch.':>13} {'first order':>11} {'order value':>11} {'value':>10}  "
        f"{int(round(level * 100))} % interval",
    ]
    for _, row in table.head(shown).iterrows():
        interval = ("—" if pd.isna(row["acquisition_value_lower"])
                    else f"{row['acquisition_value_lower']:,.2f} to {row['acquisition_value_upper']:,.2f}")
        lines.append(
            f"  {label(row):<28} {_fmt(row['expected_repeat_purchases'], 3):>13} "
            f"{_fmt(row['first_order_value'], 2):>11} {_fmt(row['expected_order_value'], 2):>11} "
            f"{_fmt(row['acquisition_value'], 2):>10}  {interval}"
        )
    if len(table) > shown:
        lines.append(f"  ... {len(table) - shown:,} more rows in the output")
    if (table["first_order_basis"] == "mean_spend").any():
        lines.append("  first order: not recorded by this model (trained without a customer table), so the mean spend "
                     "per order stands in for it")
    if table["acquisition_value"].isna().all():
        lines.append("  value: none (the model has no amounts); the repeat purchases are still forecast")
    if (table["spend_basis"] == "pooled").any() and (table["spend_basis"] == "channel").any():
        lines.append("  order value: the channel's own spend model where it has one, else the pooled one (spend_basis)")
    if output is not None:
        lines.append(f"  written to {output}")
    return "\n".join(lines)
