"""The Spark engine equals the local DuckDB engine: transactions, RFM, scores, segments, errors.

Runs a real ``local[2]`` Spark session (needs Java 17+); skipped only when pyspark is not
installed. Reference values are the local engine's own results on the same input, computed in
the same test: :mod:`clvmodel.io` + :func:`clvmodel.rfm.summarise` for RFM and
:func:`clvmodel.predict.score` for scores. Everything is compared exactly, floats included: both
engines run the same SQL on exact DECIMAL(38, 9) day totals and the same numpy scoring per customer,
so no result depends on a summing order.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession  # noqa: E402 - after the skip

from clvmodel import io as clv_io  # noqa: E402 - after the skip
from clvmodel import rfm as clv_rfm  # noqa: E402
from clvmodel import spark as clv_spark  # noqa: E402
from clvmodel.spark import summary as spark_summary  # noqa: E402
from clvmodel.spark.load import refuse_duckdb_settings  # noqa: E402
from clvmodel.spark import validate as spark_validate  # noqa: E402
from clvmodel.artifact import TrainedModel  # noqa: E402
from clvmodel.config import DataConfig  # noqa: E402
from clvmodel.errors import ClvError  # noqa: E402
from clvmodel.models.historical import HistoricalModel  # noqa: E402
from clvmodel.predict import OUTPUT_COLUMNS, read_input, validate_rfm  # noqa: E402
from clvmodel.predict import score as local_score  # noqa: E402

CDNOW_CALIBRATION_END = dt.date(1997, 9, 30)  # Fader, Hardie & Lee (2005): 39 + 39 weeks
CDNOW_OBSERVATION_END = dt.date(1998, 6, 30)
SEGMENTS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_model(cdnow_summary: pd.DataFrame, cdnow_bgnbd, cdnow_gamma_gamma) -> TrainedModel:
    """BG/NBD + Gamma-Gamma + historical on the CDNOW calibration summary, rebuilt from its JSON
    document (what a model directory holds), with a horizon of 39 weeks."""
    model = TrainedModel(
        name="cdnow-spark-test",
        time_unit="week",
        models={
            "historical": HistoricalModel().fit(cdnow_summary),
            "bgnbd": cdnow_bgnbd,
            "gamma_gamma": cdnow_gamma_gamma,
        },
        clv={"horizon": 39, "discount_rate": 0.0, "margin": 1.0},
        segments=dict(SEGMENTS),
        columns={"customer_id": "customer_id", "date": "date", "amount": "amount"},
        primary="bgnbd",
    )
    return TrainedModel.from_document(json.loads(json.dumps(model.to_document())))


def _synthetic_log(seed: int = 20261122, customers: int = 400, rows: int = 3000) -> pd.DataFrame:
    """A seeded transaction log: ids with leading zeros, repeat and same-day purchases, zero
    amounts, three refunds, customers arriving through the whole period (2024-01-01 .. ~2025-05)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{n:06d}" for n in rng.choice(100_000, size=customers, replace=False)])
    start = np.datetime64("2024-01-01")
    first = start + rng.integers(0, 360, size=customers).astype("timedelta64[D]")
    who = rng.integers(0, customers, size=rows)
    day = first[who] + rng.integers(0, 150, size=rows).astype("timedelta64[D]") * (rng.random(rows) < 0.7)
    amount = np.round(rng.gamma(2.0, 25.0, size=rows), 2)
    amount[rng.random(rows) < 0.02] = 0.0
    amount[:3] = [-5.0, -12.5, -0.01]
    ids[np.argmin(first)] = 'AB;"7"'  # in every summary; CSV quoting with the separator and doubled quotes inside an id
    return pd.DataFrame({"client": ids.astype(object)[who], "when": pd.to_datetime(day).date, "value": amount})


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """The synthetic log as Parquet (a DATE column) and as ';'-separated CSV with unpadded
    day/month dates, each with the data config that reads it (refunds excluded)."""
    folder = tmp_path_factory.mktemp("spark_synthetic")
    log = _synthetic_log()
    columns = {"customer_id": "client", "date": "when", "amount": "value"}
    parquet = folder / "log.parquet"
    log.to_parquet(parquet, index=False)
    csv = folder / "log.csv"
    text = log.assign(when=[f"{d.day}/{d.month}/{d.year}" for d in log["when"]], value=log["value"].map(repr))
    text.to_csv(csv, sep=";", index=False)
    return {
        "parquet": (parquet, {"columns": columns, "negative_amounts": "exclude"}),
        "csv": (csv, {"columns": columns, "negative_amounts": "exclude", "delimiter": ";", "date_format": "%d/%m/%Y"}),
    }


# --- helpers ------------------------------------------------------------------------------------


def _duckdb_rfm(data: DataConfig, **dates) -> tuple[clv_io.LoadReport, clv_rfm.RfmResult]:
    con = clv_io.connect()
    try:
        report = clv_io.load_transactions(con, data)
        return report, clv_rfm.summarise(con, **dates)
    finally:
        con.close()


def _assert_same(spark_frame: pd.DataFrame, local: pd.DataFrame, exact: tuple[str, ...] = ()) -> None:
    """Same columns, same customers in the same order, every value equal (floats exactly)."""
    assert list(spark_frame.columns) == list(local.columns)
    assert len(spark_frame) == len(local)
    for column in local.columns:
        left, right = spark_frame[column].to_numpy(), local[column].to_numpy()
        if column in exact or local[column].dtype == object or str(local[column].dtype) == "str":
            assert [None if pd.isna(v) else v for v in left] == [None if pd.isna(v) else v for v in right], column
        else:
            np.testing.assert_array_equal(left.astype(float), right.astype(float), err_msg=column)


def _spark_scores(frame) -> pd.DataFrame:  # noqa: ANN001 - a pyspark DataFrame
    return clv_spark.rfm_to_pandas(frame).sort_values("customer_id", kind="stable").reset_index(drop=True)


# --- RFM ------------------------------------------------------------------------------------------


def test_cdnow_rfm_with_calibration_split_equals_duckdb(spark, cdnow_rfm: clv_rfm.RfmResult) -> None:
    frame, report = clv_spark.load_transactions(spark, "bundled:CDNOW_sample", {"date_format": "%Y%m%d"})
    assert dict(frame.dtypes) == {"customer_id": "string", "day": "date", "amount": "double"}
    assert (report.rows_read, report.customers, report.zero_amount_rows) == (6919, 2357, 8)
    summary = clv_spark.rfm(
        spark, frame, time_unit="week", calibration_end=CDNOW_CALIBRATION_END, observation_end=CDNOW_OBSERVATION_END
    )
    result = clv_spark.rfm_to_pandas(summary)
    _assert_same(result, cdnow_rfm.summary, exact=("customer_id", "frequency", "frequency_holdout"))
    assert result["customer_id"].iloc[0] == "00004"  # leading zeros kept
    assert clv_spark.rfm_counts(
        spark, frame, calibration_end=CDNOW_CALIBRATION_END, observation_end=CDNOW_OBSERVATION_END
    ) == {"customers_after_calibration": 0, "transactions_after_observation_end": 0}


def test_whitespace_file_read_like_io(spark) -> None:
    """CDNOW's own text file, whitespace-delimited without a header, in days and without a split."""
    from clvmodel.models.lifetimes_adapter import dataset_path

    data = DataConfig(
        source=str(dataset_path("CDNOW_sample")),
        delimiter="whitespace",
        header=False,
        date_format="%Y%m%d",
        columns={"customer_id": "column0", "date": "column2", "amount": "column4"},
    )
    _, local = _duckdb_rfm(data, time_unit="day")
    frame = clv_spark.transactions(spark, None, data)
    _assert_same(clv_spark.rfm_to_pandas(clv_spark.rfm(spark, frame, time_unit="day")), local.summary,
                 exact=("customer_id", "frequency", "recency", "T"))


@pytest.mark.parametrize(
    ("kind", "time_unit", "split"),
    [("parquet", "day", True), ("csv", "week", True), ("csv", "day", False), ("parquet", "week", False)],
)
def test_synthetic_rfm_equals_duckdb(spark, synthetic_files, kind: str, time_unit: str, split: bool) -> None:
    path, options = synthetic_files[kind]
    data = DataConfig(source=str(path), **options)
    # The split leaves some customers after the calibration end and some rows after the observation end.
    dates = {"calibration_end": dt.date(2024, 9, 30), "observation_end": dt.date(2025, 2, 28)} if split else {}
    local_report, local = _duckdb_rfm(data, time_unit=time_unit, **dates)
    frame, report = clv_spark.load_transactions(spark, str(path), options)
    for field in ("rows_read", "rows_excluded", "zero_amount_rows", "customers", "first_date", "last_date", "rows_kept"):
        assert getattr(report, field) == getattr(local_report, field), field
    assert report.rows_excluded == {"negative_amount": 3}
    result = clv_spark.rfm_to_pandas(clv_spark.rfm(spark, frame, time_unit=time_unit, **dates))
    _assert_same(result, local.summary, exact=("customer_id", "frequency", "frequency_holdout"))
    assert result["customer_id"].str.len().eq(6).all() and 'AB;"7"' in set(result["customer_id"])
    counts = clv_spark.rfm_counts(spark, frame, **dates)
    assert counts == {
        "customers_after_calibration": local.customers_after_calibration,
        "transactions_after_observation_end": local.transactions_after_observation_end,
    }
    if split:
        assert local.customers_after_calibration > 0 and local.transactions_after_observation_end > 0


def test_rfm_runs_the_rfm_sql_text_and_leaves_no_view(spark, monkeypatch) -> None:
    calls = []
    original = clv_rfm.rfm_sql

    def recording(*args, **kwargs):
        calls.append(inspect.signature(original).bind(*args, **kwargs).arguments)
        return original(*args, **kwargs)

    monkeypatch.setattr(clv_rfm, "rfm_sql", recording)
    frame = spark.createDataFrame(
        [("a", dt.date(2024, 1, 1), 1.0), ("a", dt.date(2024, 1, 8), 2.0)], "customer_id string, day date, amount double"
    )
    summary = clv_spark.rfm(spark, frame, time_unit="week")
    assert len(calls) == 1 and calls[0].pop("table").startswith("clvmodel_")
    assert calls[0] == {"cut": dt.date(2024, 1, 8), "observation_end": dt.date(2024, 1, 8), "unit_days": 7, "holdout": False}
    assert not [t for t in spark.catalog.listTables() if t.name.startswith("clvmodel_")]
    assert summary.collect()[0].asDict() == {"customer_id": "a", "frequency": 1, "recency": 1.0, "T": 1.0, "monetary_value": 2.0}


def test_rfm_date_errors_match_summarise(spark) -> None:
    frame = spark.createDataFrame(
        [("a", dt.date(2024, 1, 1), 1.0), ("b", dt.date(2024, 3, 1), 2.0)], "customer_id string, day date, amount double"
    )
    with pytest.raises(ClvError, match=r"^calibration_end 2024-03-01 is outside the data \(2024-01-01 to 2024-03-01\); "):
        clv_spark.rfm(spark, frame, time_unit="week", calibration_end=dt.date(2024, 3, 1))
    with pytest.raises(ClvError, match=r"^unknown time unit 'fortnight'; use one of: day, week, month, year$"):
        clv_spark.rfm(spark, frame, time_unit="fortnight")


@pytest.mark.parametrize(("setting", "expected"), [
    ({"memory_limit": "2GB"}, "data.memory_limit 2GB is DuckDB's memory cap; on Spark remove it"),
    ({"temp_directory": "/tmp/spill"}, "data.temp_directory '/tmp/spill' is where DuckDB spills; on Spark remove it"),
])
def test_duckdb_settings_are_refused_not_ignored(spark, setting: dict, expected: str) -> None:
    # `clvmodel rfm --engine spark` read the log with them silently ignored (train refused one).
    data = DataConfig(source="bundled:CDNOW_sample", date_format="%Y%m%d", **setting)
    with pytest.raises(ClvError, match="^" + expected.replace("(", r"\(")):
        refuse_duckdb_settings(data)
    # A trained model's data section keeps them (how the training machine ran DuckDB): scoring
    # on Spark reads the log with it (clvmodel score --engine spark), the settings unused.
    _, report = clv_spark.load_transactions(spark, None, data)
    assert report.customers == 2357


def test_a_decimal_result_is_refused_as_a_bug(spark) -> None:
    """Spark reads `1.0` as DECIMAL; rfm() must never hand out DECIMAL (6-place) recency or T."""
    with pytest.raises(RuntimeError, match="recency decimal"):
        spark_summary._check_rfm_types(spark.sql("SELECT CAST(1 AS INT) / 7.0 AS recency"))


# --- scoring ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "options"),
    [("model settings", {}), ("overrides", {"horizon": 52, "discount_rate": 0.01, "margin": 0.3}), ("no spend", {})],
)
def test_scores_equal_predict_score(spark, cdnow_model, cdnow_summary, variant: str, options: dict) -> None:
    columns = ["customer_id", "frequency", "recency", "T"] + ([] if variant == "no spend" else ["monetary_value"])
    rfm_rows = cdnow_summary[columns]
    local = local_score(cdnow_model, rfm_rows, interval_draws=0, **options)
    frame = spark.createDataFrame(rfm_rows).repartition(3)  # several partitions, several batches each
    result = _spark_scores(clv_spark.score(frame, cdnow_model, **options))
    assert list(result.columns) == OUTPUT_COLUMNS
    _assert_same(result, local, exact=("customer_id", "segment", "status"))
    assert set(result["segment"]) == {"VIP", "high", "medium", "low", "at_risk", "lost"}


def test_scores_from_spark_rfm_and_input_order_do_not_change_segments(spark, cdnow_model, cdnow_summary) -> None:
    """End to end (Spark transactions -> Spark RFM -> Spark scores) equals the local engine, and a
    shuffled input gives the same segments: ties in predicted CLV are broken by customer_id."""
    frame = clv_spark.transactions(spark, "bundled:CDNOW_sample", {"date_format": "%Y%m%d"})
    summary = clv_spark.rfm(
        spark, frame, time_unit="week", calibration_end=CDNOW_CALIBRATION_END, observation_end=CDNOW_OBSERVATION_END
    )
    local = local_score(cdnow_model, cdnow_summary, interval_draws=0)  # summarise sorts by customer_id: same tie order
    assert local["predicted_clv"].duplicated().sum() > 100  # many ties: the rule matters
    _assert_same(_spark_scores(clv_spark.score(summary, cdnow_model)), local, exact=("customer_id", "segment", "status"))
    shuffled = spark.createDataFrame(cdnow_summary.sample(frac=1.0, random_state=3)[list(cdnow_summary.columns)])
    again = _spark_scores(clv_spark.score(shuffled, cdnow_model))
    assert again["segment"].tolist() == local["segment"].tolist()


def test_fixed_boundaries_label_a_customer_alike_alone_and_in_the_file(spark, cdnow_model, cdnow_summary) -> None:
    """With boundaries fixed on the training customers, Spark labels each customer in its batch: the whole
    file and each customer scored alone get the segments the local engine gives the whole file."""
    from clvmodel.predict import fix_segment_boundaries

    model = TrainedModel.from_document(json.loads(json.dumps(cdnow_model.to_document())))
    fix_segment_boundaries(model, cdnow_summary)
    model = TrainedModel.from_document(json.loads(json.dumps(model.to_document())))  # through its document
    assert model.segment_boundaries is not None
    local = local_score(model, cdnow_summary, interval_draws=0)
    whole = _spark_scores(clv_spark.score(spark.createDataFrame(cdnow_summary).repartition(3), model))
    _assert_same(whole, local, exact=("customer_id", "segment", "status"))
    picked = local.groupby("segment").head(1)  # one customer of each segment, each scored alone
    for row in picked.itertuples():
        alone = _spark_scores(clv_spark.score(spark.createDataFrame(cdnow_summary[cdnow_summary["customer_id"] == row.customer_id]), model))
        assert alone["segment"].tolist() == [row.segment]
    assert set(picked["segment"]) == {"VIP", "high", "medium", "low", "at_risk", "lost"}


def test_score_transactions_equals_score_command_path(spark, cdnow_model, synthetic_files, tmp_path) -> None:
    """As of a date inside the data: customers who arrive later keep a row with a status."""
    path, options = synthetic_files["parquet"]
    log = pd.read_parquet(path).rename(columns={"client": "customer_id", "when": "date", "value": "amount"})
    log = log[log["amount"] >= 0]
    csv = tmp_path / "tx.csv"
    log.assign(date=log["date"].astype(str)).to_csv(csv, index=False)
    as_of = dt.date(2024, 9, 30)
    local = local_score(cdnow_model, read_input(cdnow_model, csv, as_of=as_of), interval_draws=0)
    frame = clv_spark.transactions(spark, str(csv))
    result = clv_spark.rfm_to_pandas(clv_spark.score_transactions(spark, frame, cdnow_model, as_of=as_of))
    result = result.sort_values(["status", "customer_id"], key=lambda s: s.ne("ok") if s.name == "status" else s)
    assert (local["status"] == "first_purchase_after_as_of").sum() > 0
    _assert_same(result.reset_index(drop=True), local, exact=("customer_id", "segment", "status"))


def test_score_checks_the_whole_frame_like_validate_rfm(spark, cdnow_model) -> None:
    rows = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [1.0, 0.0, 2.0], "recency": [2.0, 0.0, 3.0], "T": [4.0, 5.0, 6.0]})
    cases = [
        rows.assign(customer_id=["a", "b", "a"]),
        rows.assign(frequency=[1.0, -1.0, 2.0]),
        rows.assign(frequency=[1.0, 0.5, 2.0]),
        rows.assign(recency=[2.0, 0.0, 7.0]),
        rows.assign(T=[4.0, np.nan, 6.0]),
        rows.drop(columns="T"),
        rows.iloc[:0],
        rows.assign(customer_id=["a", None, " "]),  # two empty ids, the first in data row 2
        rows.assign(customer_id=["b", "b ", "a"]),  # ids are compared stripped
        rows.assign(frequency=[1.0, -1.0, -2.0]).iloc[::-1],  # the example is the first in input order
        rows.assign(monetary_value=[1.0, -3.0, 2.0]),
        rows.assign(recency=[2.0, np.inf, 3.0]),
        rows.assign(frequency=[3.0, 0.0, 2.0]),  # more repeat days than days: refused only with a time unit
    ]
    for bad in cases:
        bad = bad.reset_index(drop=True)
        schema = ", ".join(f"{c} {'string' if c == 'customer_id' else 'double'}" for c in bad.columns)
        frame = spark.createDataFrame(bad, schema)
        if bad["frequency"].tolist() == [3.0, 0.0, 2.0]:
            with pytest.raises(ClvError) as local_error:
                validate_rfm(bad, time_unit="day")
            with pytest.raises(ClvError) as spark_error:
                spark_validate._validate_rfm(frame, "input", time_unit="day")
            assert str(spark_error.value) == str(local_error.value)
            continue
        with pytest.raises(ClvError) as local_error:
            validate_rfm(bad)
        with pytest.raises(ClvError) as spark_error:
            clv_spark.score(frame, cdnow_model)
        assert str(spark_error.value) == str(local_error.value)
    with pytest.raises(ClvError) as local_error:
        local_score(cdnow_model, rows, horizon=0)
    with pytest.raises(ClvError, match="^horizon must be a whole number of periods > 0, got 0") as spark_error:
        clv_spark.score(spark.createDataFrame(rows), cdnow_model, horizon=0)
    assert str(spark_error.value) == str(local_error.value)


# --- transactions: the checks and messages of io ----------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        ([("007", "2024-01-01", "5")], {"columns": {"amount": "price"}}),
        ([], {}),
        ([], {"columns": {"amount": "price"}}),
        ([("007", "2024-01-01", "5"), ("", "2024-01-02", "5")], {}),
        ([("007", "2024-01-01", "5"), ("NA", "2024-01-02", "5")], {}),
        ([("007", "2024-01-01", "5"), ("008", "NULL", "5")], {}),
        ([("007", "2024-01-01", "5"), ("008", "01/02/2024", "5")], {}),
        ([("007", "2024-01-01", "5"), ("008", "2024", "5")], {}),
        ([("007", "2024-01-01", "5"), ("008", "2024-01-02", "five")], {}),  # $5 is cleaned locally (amount_format)
        ([("007", "2024-01-01", "5"), ("008", "2024-01-02", "-5")], {}),
        ([("008", "2024-01-02", "-5")], {"negative_amounts": "exclude"}),
        ([("007", "20240101", "5"), ("008", "2024-01-02", "5")], {"date_format": "%Y%m%d"}),
    ],
    ids=["missing column", "header only", "header only, other columns", "no id", "NA id", "NULL date", "bad date", "partial date", "bad amount", "refund", "all excluded", "bad format"],
)
def test_transaction_errors_equal_io_messages(spark, write_csv, rows, options) -> None:
    path = str(write_csv(rows))
    data = DataConfig(source=path, **options)
    with pytest.raises(ClvError) as local_error:
        _duckdb_rfm(data, time_unit="day")
    with pytest.raises(ClvError) as spark_error:
        clv_spark.transactions(spark, path, options)
    assert str(spark_error.value) == str(local_error.value)


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        ([("007", "2024-01-01", "5"), ("008", "2024-01-02", "2000000000")], {}),
        ([("007", "2024-01-01", "-5"), ("007", "2024-01-01", "-5")], {"negative_amounts": "exclude", "duplicates": "drop"}),
        ([("007", "2024-01-01", "5"), ("008", "1724-01-02", "5")], {}),
        ([("007", "2024-01-01", "5"), ("008", "2024-01-02", "1e300")], {"max_amount": None}),
    ],
    ids=["huge amount", "all excluded with duplicates", "odd year", "above the ceiling with no max_amount"],
)
def test_new_row_checks_equal_io_messages(spark, write_csv, rows, options) -> None:
    path = str(write_csv(rows))
    with pytest.raises(ClvError) as local_error:
        _duckdb_rfm(DataConfig(source=path, **options), time_unit="day")
    with pytest.raises(ClvError) as spark_error:
        clv_spark.transactions(spark, path, options)
    assert str(spark_error.value) == str(local_error.value)


def test_repeated_header_and_fractional_ids_equal_io_messages(spark, write_csv, tmp_path) -> None:
    repeated = str(write_csv([("007", "2024-01-01", "5", "6")], header=("customer_id", "date", "amount", "amount")))
    fractional = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": [7.0, 8.0], "date": ["2024-01-01", "2024-01-02"], "amount": [5.0, 6.0]}).to_parquet(fractional)
    for path in (repeated, str(fractional)):
        with pytest.raises(ClvError) as local_error:
            _duckdb_rfm(DataConfig(source=path), time_unit="day")
        with pytest.raises(ClvError) as spark_error:
            clv_spark.transactions(spark, path)
        assert str(spark_error.value) == str(local_error.value)


@pytest.mark.parametrize(
    "options",
    [{}, {"duplicates": "drop"}, {"encoding": "latin-1"}, {"encoding": "latin-1", "duplicates": "drop", "max_amount": None}],
)
def test_duplicates_encoding_and_utc_reports_equal_io(spark, tmp_path, options) -> None:
    """Exact duplicates kept or dropped, a Latin-1 file, UTC offsets: the same LoadReport and rows."""
    lines = [
        "customer_id,date,amount",
        "caf\u00e9,2024-01-01,5",
        "caf\u00e9,2024-01-01,5",
        "007,2024-01-03 23:30:00-02:00,0",
        "007,2024-01-05 10:00:00+00:00,7.5",
        "008,2024-01-06,3e9",
    ]
    encoding = options.get("encoding", "utf-8")
    path = tmp_path / "tx.csv"
    path.write_bytes(("\n".join(lines if options.get("max_amount", 1) is None else lines[:-1]) + "\n").encode(encoding))
    local_report, local = _duckdb_rfm(DataConfig(source=str(path), **options), time_unit="day")
    frame, report = clv_spark.load_transactions(spark, str(path), options)
    for field in ("rows_read", "rows_excluded", "zero_amount_rows", "customers", "first_date", "last_date",
                  "duplicate_rows", "utc_converted_rows", "utc_day_changed_rows"):
        assert getattr(report, field) == getattr(local_report, field), field
    assert report.utc_converted_rows == 1 and report.utc_day_changed_rows == 1
    result = clv_spark.rfm_to_pandas(clv_spark.rfm(spark, frame, time_unit="day"))
    _assert_same(result, local.summary, exact=("customer_id", "frequency"))
    assert "caf\u00e9" in set(result["customer_id"])


def test_not_utf8_file_equals_io_message(spark, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,date,amount\n007,2024-01-01,5\ncaf\u00e9,2024-01-02,5\n".encode("latin-1"))
    with pytest.raises(ClvError) as local_error:
        _duckdb_rfm(DataConfig(source=str(path)), time_unit="day")
    with pytest.raises(ClvError) as spark_error:
        clv_spark.transactions(spark, str(path))
    assert str(spark_error.value) == str(local_error.value)


def test_empty_file_equals_io_message(spark, tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ClvError) as local_error:
        _duckdb_rfm(DataConfig(source=str(path)), time_unit="day")
    with pytest.raises(ClvError) as spark_error:
        clv_spark.transactions(spark, str(path))
    assert str(spark_error.value) == str(local_error.value)


def test_missing_file_and_unsupported_date_format(spark, tmp_path) -> None:
    with pytest.raises(ClvError, match=r"^no file found at '.*nothing\.csv'; check data.source"):
        clv_spark.transactions(spark, str(tmp_path / "nothing.csv"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(ClvError, match=r"^cannot read .*corrupt\.parquet: .*; check that it is UTF-8 CSV"):
        clv_spark.transactions(spark, str(corrupt))
    with pytest.raises(ClvError, match=r"%y \(two-digit year\) reads differently on Spark"):
        clv_spark.strftime_to_spark("%d.%m.%y")
    assert clv_spark.strftime_to_spark("%Y%m%d") == "yyyyMMdd"
    assert clv_spark.strftime_to_spark("%d/%m/%Y %H:%M") == "d/M/yyyy H:m"
    assert clv_spark.strftime_to_spark("%Y-%m-%dT%H:%M:%S") == "yyyy-M-d'T'H:m:s"


def test_write_parquet_folder_and_refuse_to_overwrite(spark, tmp_path) -> None:
    frame = spark.createDataFrame([("001", 1.0)], "customer_id string, predicted_clv double")
    target = str(tmp_path / "scores.parquet")
    clv_spark.write(frame, target)
    assert pd.read_parquet(target)["customer_id"].tolist() == ["001"]
    with pytest.raises(ClvError, match="exists; remove it or choose another path"):
        clv_spark.write(frame, target)
    clv_spark.write(frame, target, overwrite=True)


def test_write_csv_neutralises_formula_ids_as_the_local_engine(spark, tmp_path) -> None:
    ids = ["=1+1", "+7", "-3", "@SUM(A1)", "'=x", "007", "a=b"]
    frame = spark.createDataFrame([(i, 1.0, "ok") for i in ids], "customer_id string, predicted_clv double, status string")
    target = tmp_path / "scores.csv"
    clv_spark.write(frame.coalesce(1), str(target))
    (part,) = target.glob("part-*.csv")
    written = pd.read_csv(part, dtype=str, keep_default_na=False)["customer_id"].tolist()
    assert written == clv_io.csv_safe(pd.Series(ids)).tolist()  # what io.write_table writes
    assert written == ["'=1+1", "'+7", "'-3", "'@SUM(A1)", "''=x", "007", "a=b"]
    assert clv_io.read_table(part)["customer_id"].tolist() == ids  # and reads back


# --- session -----------------------------------------------------------------------------------------


def test_session_runs_workers_on_this_interpreter_in_utc(spark) -> None:
    assert os.environ["PYSPARK_PYTHON"] == sys.executable
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert clv_spark.session("local[2]") is spark  # getOrCreate: the running session is reused




def test_session_without_pyspark_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` now raises ImportError
    with pytest.raises(ClvError, match=r"^pyspark is not installed; pip install 'clvmodel\[spark\]'$"):
        clv_spark.session()


def test_session_without_java_says_so(tmp_path) -> None:
    """A real start with JAVA_HOME pointing at a folder without Java, in a fresh interpreter."""
    code = (
        "from clvmodel import spark\nfrom clvmodel.errors import ClvError\n"
        "try:\n    spark.session('local[1]')\n"
        "except ClvError as err:\n    print('ERROR', err)\n"
    )
    env = {**os.environ, "JAVA_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERROR Spark needs Java 17+ on PATH (JAVA_HOME)" in run.stdout, run.stdout + run.stderr


def test_spark_quoting_round_trips_hostile_text(spark: SparkSession) -> None:
    """Spark escapes with a backslash inside literals: sqltext.spark_literal, not DuckDB's doubling."""
    from clvmodel.sqltext import date_literal, literal, number, spark_identifier, spark_literal

    texts = ["it's", "a\\'; SELECT 1 --", "back\\slash", "''", "new\nline", "\\u0027", "`tick`", 'dq"x']
    for text in texts:
        assert spark.sql(f"SELECT {spark_literal(text)} AS v").first().v == text
        assert spark.sql(f"SELECT 1 AS {spark_identifier(text)}").columns == [text]
    # DuckDB's form is wrong on Spark where a backslash precedes a quote ('a\'' ends nothing; the
    # rest of the text becomes SQL), hence two functions.
    try:
        held = spark.sql(f"SELECT {literal(texts[1])} AS v").first().v == texts[1]
    except Exception:  # a ParseException: the text was read as SQL
        held = False
    assert not held
    assert spark.sql(f"SELECT {date_literal(dt.date(1997, 9, 30))} AS d").first().d == dt.date(1997, 9, 30)
    assert spark.sql(f"SELECT CAST({number(1e-05)} AS DOUBLE) AS x").first().x == 1e-05
