"""``clvmodel train --engine spark`` equals the local (DuckDB) engine on the same config.

The oracle is the local engine itself, trained in the same test session on the same config: the
Spark source (:class:`clvmodel.spark.training.SparkSummaries`) runs the same SQL text on the same
exact DECIMAL(38, 9) day totals, so the summary must come out identical, and everything fitted,
evaluated and scored from it is then the same code. Parameters are compared to rtol 1e-9 (they
come from identical inputs; the tolerance only keeps the test off the last bits of an optimiser),
the summary exactly, the leaderboard and the scores to rtol 1e-9. The challenger's day totals are
DOUBLE sums on both engines (not exact decimals), so its forecasts are compared to rtol 1e-9 as
well (on CDNOW they come out identical). configs/cdnow_channels.yaml (a customer table of
SYNTHETIC channels, also a covariate of BG/NBD) is trained by both engines as well: the customer
report, first orders and observed cohort curves (the same SQL text on the same totals) and every
table after them come out equal; a small seeded log does the same for what CDNOW cannot hold (odd
ids and channel names, customers without a row, a cut before the log's end, weeks and days). One
real ``local[2]`` session for the whole run (``spark`` in tests/conftest.py) and four Spark
trainings of CDNOW and the small log; skipped only without pyspark.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from clvmodel import cli  # noqa: E402 - after the skip
from clvmodel import train as train_module  # noqa: E402
from clvmodel.artifact import load  # noqa: E402
from clvmodel.budget import synthetic_channels  # noqa: E402
from clvmodel.config import load_config  # noqa: E402
from clvmodel.models import registry  # noqa: E402
from clvmodel.prepared import Prepared  # noqa: E402
from clvmodel.spark import training as spark_training  # noqa: E402
from clvmodel.train import TrainResult  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: CDNOW's whole leaderboard (as configs/cdnow.yaml lists it), the challenger included.
MODELS = "models=[historical,bgnbd,pareto_nbd,mbgnbd,gamma_gamma,challenger]"


@dataclass
class Trained:
    """One engine's run of configs/cdnow.yaml: what train returned and what its source prepared."""

    result: TrainResult
    prepared: Prepared
    stdout: str = ""


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def _recording(source: Any, seen: dict[str, Any]) -> Any:
    def prepare(config: Any, seconds: dict[str, float]) -> Prepared:
        seen["prepared"] = source(config, seconds)
        return seen["prepared"]

    return prepare


@pytest.fixture(scope="module")
def both(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """configs/cdnow.yaml (39 + 39 weeks) trained untracked by each engine: locally through the
    library, on Spark through the command (``clvmodel train --engine spark``, once, end to end;
    the session is the test's, which Spark's getOrCreate returns). Both record what ``train``
    returned and what their source of summaries prepared."""
    folder = tmp_path_factory.mktemp("spark_train")
    train = train_module.train
    seen: dict[str, Any] = {}
    config = load_config(CONFIGS / "cdnow.yaml", [MODELS, f"output.model_dir={folder / 'local'}"])
    result = train(config, track=False, source=_recording(train_module._from_transactions, seen))  # noqa: SLF001
    local = Trained(result, seen.pop("prepared"))

    def recording_train(config: Any, **options: Any) -> TrainResult:
        seen["result"] = train(config, **options)
        return seen["result"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "train", recording_train)
        patch.setattr(spark_training, "SparkSummaries",
                      lambda session, real=spark_training.SparkSummaries: _recording(real(session), seen))
        code, out, err = _cli(["train", str(CONFIGS / "cdnow.yaml"), "--engine", "spark", "--spark-master", "local[2]",
                               "--no-tracking", "--set", MODELS, "--set", f"output.model_dir={folder / 'spark'}"])
    assert code == 0, err
    return {"local": local, "spark": Trained(seen["result"], seen["prepared"], out)}


def test_summary_split_and_accounting_are_identical(both: dict[str, Trained]) -> None:
    local, spark = both["local"].result.rfm, both["spark"].result.rfm
    pd.testing.assert_frame_equal(spark.summary, local.summary, check_exact=True)
    assert len(local.summary) == 2357  # Fader, Hardie & Lee (2005): the CDNOW sample's customers
    for name in ("calibration_end", "observation_end", "customers_after_calibration",
                 "transactions_after_observation_end", "customers_after_observation_end"):
        assert getattr(spark, name) == getattr(local, name), name
    pd.testing.assert_series_equal(spark.first_days, local.first_days)
    assert both["spark"].result.load.rows_read == both["local"].result.load.rows_read
    assert both["spark"].result.load.customers == both["local"].result.load.customers


def test_parameters_leaderboard_and_scores_equal_the_local_engine(both: dict[str, Trained]) -> None:
    local, spark = both["local"].result, both["spark"].result
    assert list(spark.model.models) == list(local.model.models)
    for name, fitted in local.model.models.items():
        theirs = spark.model.models[name]
        assert list(theirs.params_ or {}) == list(fitted.params_ or {}), name
        np.testing.assert_allclose(list((theirs.params_ or {}).values()), list((fitted.params_ or {}).values()),
                                   rtol=1e-9, err_msg=name)
    # The published CDNOW fit (REFERENCE.md: BG/NBD r 0.2426, alpha 4.4136, a 0.7929, b 2.4259).
    bgnbd = spark.model.models["bgnbd"].params_ or {}
    np.testing.assert_allclose([bgnbd[k] for k in ("r", "alpha", "a", "b")], [0.2426, 4.4136, 0.7929, 2.4259], atol=5e-5)
    pd.testing.assert_frame_equal(spark.leaderboard, local.leaderboard, rtol=1e-9)
    pd.testing.assert_frame_equal(spark.calibration_table, local.calibration_table, rtol=1e-9)
    pd.testing.assert_frame_equal(spark.scores, local.scores, rtol=1e-9)
    assert spark.model.selection == local.model.selection
    assert spark.model.segment_boundaries == local.model.segment_boundaries
    assert float(spark.scores["predicted_clv"].sum()) == pytest.approx(60449.30, abs=0.005)  # the demo's total


def test_the_tracking_plot_counts_are_identical(both: dict[str, Trained]) -> None:
    local, theirs = both["local"].prepared, both["spark"].prepared
    pd.testing.assert_series_equal(theirs.repeat_series, local.repeat_series)
    summary = local.rfm.summary
    # Every CDNOW customer first bought in the plot's first weeks: the plot counts all repeat days.
    assert int(local.repeat_series.sum()) == int((summary["frequency"] + summary["frequency_holdout"]).sum())
    assert (theirs.customers, theirs.first_orders) == (None, None)


def test_the_challenger_learns_the_same_trees_from_spark_features(both: dict[str, Trained]) -> None:
    local, theirs = both["local"].prepared, both["spark"].prepared
    assert (theirs.challenger.inner_cut_, theirs.challenger.n_train_) == (local.challenger.inner_cut_, 2357)
    pd.testing.assert_frame_equal(theirs.challenger_holdout, local.challenger_holdout, rtol=1e-9)
    assert both["spark"].result.model.challenger is not None
    assert "challenger" in set(both["spark"].result.leaderboard["model"])


def test_the_command_saved_the_model_it_printed(both: dict[str, Trained]) -> None:
    saved = load(both["spark"].result.model_dir)
    for name, fitted in both["local"].result.model.models.items():
        params = fitted.params_ or {}
        np.testing.assert_allclose([saved.models[name].params_[k] for k in params], list(params.values()), rtol=1e-9,
                                   err_msg=name)
    assert "total 60,449.30" in both["spark"].stdout


#: configs/cdnow_channels.yaml's models, with the channel as a covariate too: BG/NBD's covariate
#: variant (bgnbd_cov) is fitted beside it (Config's covariate expansion).
CHANNEL_MODELS = "models=[historical,bgnbd,gamma_gamma]"


@pytest.fixture(scope="module")
def channels(spark: Any, both: dict[str, Trained], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """configs/cdnow_channels.yaml trained by each engine through the library, on a customer table
    of SYNTHETIC channels (:func:`clvmodel.budget.synthetic_channels`, seeded) for every CDNOW
    customer plus one id that never bought (left out of the curves, counted in the report)."""
    folder = tmp_path_factory.mktemp("spark_channels")
    ids = both["local"].result.rfm.summary["customer_id"]
    table = pd.concat([synthetic_channels(ids, seed=16), pd.DataFrame({"customer_id": ["never"], "channel": ["email"]})])
    table.to_csv(folder / "channels.csv", index=False)
    runs = {}
    for engine, source in (("local", train_module._from_transactions),  # noqa: SLF001
                           ("spark", spark_training.SparkSummaries(spark))):
        seen: dict[str, Any] = {}
        config = load_config(CONFIGS / "cdnow_channels.yaml", [
            CHANNEL_MODELS, f"customers.source={folder / 'channels.csv'}", "customers.covariates=[channel]",
            f"output.model_dir={folder / engine}", "tracking.enabled=false"])
        result = train_module.train(config, track=False, source=_recording(source, seen))
        runs[engine] = Trained(result, seen["prepared"])
    return runs


def test_the_customer_table_first_orders_and_observed_curves_are_identical(channels: dict[str, Trained]) -> None:
    local, theirs = channels["local"], channels["spark"]
    assert theirs.result.customer_report == local.result.customer_report
    assert (local.result.customer_report.rows, local.result.customer_report.never_bought) == (2358, 1)
    pd.testing.assert_frame_equal(theirs.prepared.customers.frame, local.prepared.customers.frame, check_exact=True)
    mine, other = local.prepared.first_orders.sort_index(), theirs.prepared.first_orders.sort_index()
    pd.testing.assert_series_equal(other, mine, check_exact=True)  # DOUBLE of the same exact decimals
    assert len(mine) == 2357 and (mine >= 0).all()  # CDNOW has a few free first orders (amount 0)
    observed = local.prepared.observed_curves
    pd.testing.assert_frame_equal(theirs.prepared.observed_curves, observed, rtol=1e-9)
    # Invariants of the counts: at period 0 each channel's customers are all its acquired customers.
    first = observed[observed["period"] == 0].set_index("channel")["customers_observed"]
    assert first.to_dict() == local.prepared.customers.frame["channel"].value_counts().to_dict()
    assert set(observed["channel"]) == {"affiliate", "email", "search", "social"}


def test_channel_tables_leaderboard_and_scores_with_covariates_equal_the_local_engine(
        channels: dict[str, Trained]) -> None:
    local, spark = channels["local"].result, channels["spark"].result
    # One covariate model (BG/NBD's variant), by the registry's flag rather than its name.
    covariate = [name for name in local.model.models if registry.family(name).covariates]
    assert len(local.model.models) == 4 and len(covariate) == 1
    assert list(spark.model.models) == list(local.model.models)
    for name, fitted in local.model.models.items():
        theirs = spark.model.models[name]
        assert list(theirs.params_ or {}) == list(fitted.params_ or {}), name
        np.testing.assert_allclose(list((theirs.params_ or {}).values()), list((fitted.params_ or {}).values()),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    assert any(k.startswith(("life.", "trans.")) for k in spark.model.models[covariate[0]].params_ or {})
    assert sorted(spark.tables) == sorted(local.tables) == ["acquisition.csv", "cohort_curves.csv",
                                                            "holdout_by_channel.csv"]
    for name, table in local.tables.items():
        pd.testing.assert_frame_equal(spark.tables[name], table, rtol=1e-9, obj=name)
    pd.testing.assert_frame_equal(spark.leaderboard, local.leaderboard, rtol=1e-9)
    pd.testing.assert_frame_equal(spark.scores, local.scores, rtol=1e-9)
    assert spark.model.acquisition.purchase_model == local.model.acquisition.purchase_model == covariate[0]
    assert spark.model.selection == local.model.selection


@pytest.mark.parametrize(
    ("overrides", "config", "expected"),
    [
        ([], "subscription_regular.yaml", "--engine spark trains on a transaction log; this config has subscriptions"),
        ([MODELS, "data.memory_limit=2GB"], "cdnow.yaml", "data.memory_limit 2GB is DuckDB's memory cap"),
        ([MODELS, "data.amount_format={decimal_mark: ',', thousands_separator: '.'}"], "cdnow.yaml",
         "data.amount_format (a decimal mark, thousands separator, currency symbols) is read by the local engine only"),
    ],
)
def test_unsupported_settings_are_refused_in_one_line(spark: Any, tmp_path: Path, overrides: list[str], config: str,
                                                       expected: str) -> None:
    sets = [a for item in [*overrides, f"output.model_dir={tmp_path / 'm'}"] for a in ("--set", item)]
    code, _, err = _cli(["train", str(CONFIGS / config), "--engine", "spark", "--no-tracking", *sets])
    assert code == 2 and err.startswith(f"clvmodel: error: {expected}") and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("option", "expected"), [
    (["--engine", "spark", "--spark-conf", "spark.driver.memory"], "--spark-conf takes key=value"),
    (["--engine", "dask"], "--engine 'dask': use local or spark"),
    (["--spark-master", "local[2]"], "--spark-master and --spark-conf are for --engine spark"),
])
def test_bad_engine_options_are_one_line(tmp_path: Path, option: list[str], expected: str) -> None:
    code, _, err = _cli(["train", str(CONFIGS / "cdnow.yaml"), *option, "--no-tracking",
                         "--set", MODELS, "--set", f"output.model_dir={tmp_path / 'm'}"])
    assert code == 2 and err.startswith(f"clvmodel: error: {expected}") and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()


def _small_log(tmp_path: Path, late: str, parquet: bool = False) -> Path:
    """Eleven purchases of three customers in 2020 and one row dated ``late``; CSV, or Parquet with
    BIGINT ids and DATE dates."""
    rows = [(1, "2020-01-0{}".format(d), 10.0) for d in range(1, 8)] + [(2, "2020-02-01", 5.0), (2, "2020-03-01", 7.0),
                                                                       (3, "2020-03-02", 4.0), (3, "2020-04-02", 4.0)]
    rows.append((3, late, 1.0))
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    path = tmp_path / ("log.parquet" if parquet else "log.csv")
    if parquet:
        frame.assign(date=pd.to_datetime(frame["date"]).dt.date).to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    config = tmp_path / "small.yaml"
    config.write_text(f"name: small\ndata: {{source: '{path}'}}\ntime_unit: week\nmodels: [historical]\nhistorical: {{retention_periods: 10}}\n"
                      f"output: {{model_dir: '{tmp_path / 'm'}'}}\n")
    return config


def test_a_far_future_date_is_refused_by_both_engines_alike(spark: Any, tmp_path: Path) -> None:
    # Without observation_end a typo dated 2090 would end the log and make every customer decades
    # old: the local reader refuses it, and so must Spark's, with the same line (review of issue 16).
    config = _small_log(tmp_path, "2090-01-10")
    errors = {}
    for engine in ("local", "spark"):
        code, _, err = _cli(["train", str(config), "--engine", engine, "--no-tracking"])
        assert code == 2 and err.count("\n") == 1, (engine, err)
        errors[engine] = err
    assert "1 of 12 rows are dated after" in errors["local"] and "customer 3 on 2090-01-10" in errors["local"]
    assert errors["spark"] == errors["local"]
    assert not (tmp_path / "m").exists()


def test_integer_ids_are_reported_on_spark_as_locally(spark: Any, tmp_path: Path) -> None:
    config = _small_log(tmp_path, "2020-04-03", parquet=True)
    outputs = {}
    for engine in ("local", "spark"):
        code, out, err = _cli(["train", str(config), "--engine", engine, "--no-tracking",
                               "--set", f"output.model_dir={tmp_path / engine}"])
        assert code == 0, (engine, err)
        outputs[engine] = out
    note = "3 customer ids read from an integer column"
    assert note in outputs["local"] and note in outputs["spark"], outputs


def _edge_log(folder: Path) -> tuple[Path, Path]:
    """A small seeded log and channel table for what CDNOW's channel test cannot hold: ids with
    leading zeros beside the same number without them, quotes, a backtick, a backslash and unicode
    in ids and channel names, customers without a row (channel ``unknown``, so no covariates),
    table ids that never bought, and customers who first buy after the observation end."""
    rng = np.random.default_rng(7)
    ids = [f"{i:04d}" for i in range(240)] + ["1", "o'brien", "back`tick", "café", "x\\y", 'q"uote']
    rows = []
    for k, cid in enumerate(ids):
        first = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 150)))
        if k % 40 == 0:
            first = dt.date(2021, 8, 1)  # after the observation end: in no curve
        days = {first} | {first + dt.timedelta(days=int(d)) for d in rng.integers(1, 500, rng.poisson(3))}
        rows += [(cid, day.isoformat(), round(float(rng.gamma(2, 20)), 2)) for day in sorted(days)]
    names = ["a'b", "c`d", "é-ü 渠道", "back\\slash", 'dq"x']
    table = [(cid, names[k % len(names)]) for k, cid in enumerate(ids) if k % 7 != 3] + [("9999", "a'b")]
    log, channels = folder / "tx.csv", folder / "channels.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(log, index=False)
    pd.DataFrame(table, columns=["customer_id", "channel"]).to_csv(channels, index=False)
    return log, channels


@pytest.mark.parametrize("unit", ["week", "day"])
def test_odd_channels_unknown_customers_and_a_cut_equal_the_local_engine(spark: Any, tmp_path: Path,
                                                                          unit: str) -> None:
    log, channels = _edge_log(tmp_path)
    prepared: dict[str, Prepared] = {}
    results: dict[str, TrainResult] = {}
    for engine, source in (("local", train_module._from_transactions),  # noqa: SLF001
                           ("spark", spark_training.SparkSummaries(spark))):
        seen: dict[str, Any] = {}
        config = tmp_path / f"{engine}.yaml"
        config.write_text(
            f"name: edge\ndata: {{source: '{log}', date_format: '%Y-%m-%d'}}\ntime_unit: {unit}\n"
            f"calibration_end: 2021-01-31\nobservation_end: 2021-06-30\nmodels: [historical, bgnbd, gamma_gamma]\n"
            f"customers: {{source: '{channels}', channel: channel}}\nclv: {{horizon: 26, margin: 0.5}}\n"
            f"tracking: {{enabled: false}}\noutput: {{model_dir: '{tmp_path / engine}'}}\n")
        results[engine] = train_module.train(load_config(config, []), track=False, source=_recording(source, seen))
        prepared[engine] = seen["prepared"]
    local, theirs = prepared["local"], prepared["spark"]
    pd.testing.assert_series_equal(theirs.first_orders.sort_index(), local.first_orders.sort_index(), check_exact=True)
    assert {"0001", "1", "o'brien", "back`tick", "café", "x\\y", 'q"uote'} <= set(local.first_orders.index)
    pd.testing.assert_frame_equal(theirs.customers.frame, local.customers.frame, check_exact=True)
    pd.testing.assert_frame_equal(theirs.observed_curves, local.observed_curves, rtol=1e-9)
    assert set(local.observed_curves["channel"]) == {"a'b", "c`d", "é-ü 渠道", "back\\slash", 'dq"x', "unknown"}
    assert results["spark"].customer_report == results["local"].customer_report
    for name, table in results["local"].tables.items():
        pd.testing.assert_frame_equal(results["spark"].tables[name], table, rtol=1e-9, obj=name)
    pd.testing.assert_frame_equal(results["spark"].leaderboard, results["local"].leaderboard, rtol=1e-9)
    pd.testing.assert_frame_equal(results["spark"].scores, results["local"].scores, rtol=1e-9)
