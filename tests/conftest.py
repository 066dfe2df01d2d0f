"""Shared fixtures.

Keep this file small: fixtures used by more than one test module only. Reference values live in
the test modules that assert them, each with its source (see /work/shared/REFERENCE.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from clvmodel import io as clv_io  # `io` is the standard library's here
from clvmodel import rfm
from clvmodel.config import DataConfig


# --- a trained CDNOW model, shared by the train, predict and tracking tests -------------------


@dataclass
class TrainedCdnow:
    """`clvmodel train configs/cdnow.yaml` run once per session in a temporary directory."""

    workdir: Path
    tracking_uri: str
    model_dir: Path
    run_id: str
    result: Any
    stdout: str


@pytest.fixture(scope="session")
def trained_cdnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedCdnow]:
    """Train the demo config through the CLI with a sqlite MLflow store in a temp dir.

    The environment and working directory are restored afterwards; nothing is left running.
    """
    from clvmodel import cli
    from clvmodel.config import load_config
    from clvmodel.train import train

    workdir = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    model_dir = workdir / "models" / "cdnow"
    config = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
    saved_env, saved_cwd = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(workdir)  # MLflow writes run artifacts under ./mlruns
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["train", str(config), "--set", f"output.model_dir={model_dir}"])
        assert code == 0, out.getvalue()
        stdout = out.getvalue()
        run_id = stdout.rsplit("run       ", 1)[1].split()[0]
        # The in-process result for exact comparisons (same config, untracked, other directory).
        result = train(load_config(config, [f"output.model_dir={workdir / 'untracked'}"]), track=False)
        yield TrainedCdnow(workdir, uri, model_dir, run_id, result, stdout)
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


# --- one Spark session for the whole run (a JVM start costs seconds) ---------------------------


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A ``local[2]`` session shared by every Spark test (tests/test_spark.py, tests/spark/);
    stopped at the end only if this fixture started it.

    Small Arrow batches (400 rows) make every scoring test run predict.score on several batches
    and partitions. Whole-stage code generation compiles Java for every new query shape (seconds
    each on this small data); interpreted execution computes the same results, several times
    faster here. Two shuffle partitions and no adaptive planning suit two cores.
    """
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from clvmodel import spark as clv_spark

    existing = SparkSession.getActiveSession()
    session = clv_spark.session(
        "local[2]",
        app_name="clvmodel-tests",
        config={
            "spark.ui.enabled": "false",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "400",
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
        },
    )
    if existing is None:
        session.sparkContext.setLogLevel("ERROR")
    yield session
    if existing is None:
        session.stop()


# --- data fixtures for the unit tests of io, rfm, models, clv and evaluate -----------------------


@pytest.fixture(scope="session")
def cdnow_typed() -> pd.DataFrame:
    """The CDNOW sample as typed columns (text ids, DATE dates, DOUBLE amounts), for Parquet sources."""
    from clvmodel.models.lifetimes_adapter import dataset_path

    frame = pd.read_csv(dataset_path("CDNOW_sample"), sep=r"\s+", header=None,
                        names=["customer_id", "date", "quantity", "amount"], dtype={"customer_id": str})
    frame["date"] = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d").dt.date
    return frame


#: The CDNOW split used by Fader, Hardie & Lee (2005): 39 calibration weeks, 39 holdout weeks.
CDNOW_CALIBRATION_END = dt.date(1997, 9, 30)
CDNOW_OBSERVATION_END = dt.date(1998, 6, 30)


@pytest.fixture(scope="session")
def cdnow_rfm() -> rfm.RfmResult:
    """The calibration/holdout RFM result of ``bundled:CDNOW_sample`` in weeks (read once).

    Calibration ends 1997-09-30, observation ends 1998-06-30; customer ids are CDNOW's master
    ids (``"00004"``, ...). Session-scoped: tests must not mutate it.
    """
    con = clv_io.connect()
    clv_io.load_transactions(con, DataConfig(source="bundled:CDNOW_sample"))
    result = rfm.summarise(
        con, time_unit="week", calibration_end=CDNOW_CALIBRATION_END, observation_end=CDNOW_OBSERVATION_END
    )
    con.close()
    return result


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_rfm: rfm.RfmResult) -> pd.DataFrame:
    """The 2,357-row CDNOW summary (``customer_id, frequency, recency, T, monetary_value`` + holdout
    columns) of :func:`cdnow_rfm`. Session-scoped: copy it before changing anything."""
    return cdnow_rfm.summary


@pytest.fixture(scope="session")
def cdnow_bgnbd(cdnow_summary: pd.DataFrame):
    """A :class:`~clvmodel.models.bgnbd.BetaGeoModel` fitted on :func:`cdnow_summary` (read-only)."""
    from clvmodel.models.bgnbd import BetaGeoModel

    return BetaGeoModel().fit(cdnow_summary)


@pytest.fixture(scope="session")
def cdnow_gamma_gamma(cdnow_summary: pd.DataFrame):
    """A :class:`~clvmodel.models.gamma_gamma.GammaGammaModel` fitted on :func:`cdnow_summary`."""
    from clvmodel.models.gamma_gamma import GammaGammaModel

    return GammaGammaModel().fit(cdnow_summary)


@pytest.fixture
def duck() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection from :func:`clvmodel.io.connect`, closed afterwards."""
    con = clv_io.connect()
    yield con
    con.close()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """``write_csv(rows, header=("customer_id", "date", "amount"), name="tx.csv", sep=",")`` writes
    a small text file in ``tmp_path`` exactly as given (every value is written as text, so ids like
    ``"007"`` keep their zeros) and returns its path. ``header=None`` writes no header line."""

    def _write(
        rows: Sequence[Sequence[object]],
        header: Sequence[str] | None = ("customer_id", "date", "amount"),
        name: str = "tx.csv",
        sep: str = ",",
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [sep.join(header)] if header is not None else []
        lines += [sep.join(str(v) for v in row) for row in rows]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    return _write


@pytest.fixture()
def started_processes() -> Iterator[list]:
    """Processes a test starts (each in its own session); each is stopped at the end, and only those."""
    import signal
    import subprocess

    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture()
def score_three_ways(tmp_path: Path, started_processes: list) -> Callable[..., dict[str, pd.DataFrame]]:
    """Score RFM rows with a saved model through Python, the CLI and a real REST server.

    Returns ``{"python": ..., "cli": ..., "rest": ...}`` score frames for the same rows; the
    server this fixture starts is stopped at the end. Any family on the registry is scored the
    same way, so a family's tests call this with its own model and rows.
    """
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    import clvmodel
    from clvmodel.predict import score

    cli = Path(sys.executable).with_name("clvmodel")
    env = {**os.environ, "PYTHONPATH": str(Path(clvmodel.__file__).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CLVMODEL_DEBUG", None)
    started = started_processes

    def _score(model_dir: Path, rows: pd.DataFrame, **params: float) -> dict[str, pd.DataFrame]:
        python = score(clvmodel.load_model(str(model_dir)), rows, **params)
        source, out = tmp_path / "rows.csv", tmp_path / "scores.csv"
        rows.to_csv(source, index=False)
        options = [x for key, value in params.items() for x in (f"--{key.replace('_', '-')}", str(value))]
        done = subprocess.run([str(cli), "score", "--model", str(model_dir), "--input", str(source), "--output", str(out),
                               *options], env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = (tmp_path / f"server-{port}.log").open("w")
        process = subprocess.Popen([str(cli), "serve", "--model", str(model_dir), "--port", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
                                   stdin=subprocess.DEVNULL)
        started.append(process)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / f"server-{port}.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()},
                "params": params}
        request = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            rest = pd.DataFrame(json.loads(response.read())["predictions"])
        return {"python": python, "cli": pd.read_csv(out, dtype={"customer_id": str}), "rest": rest}

    return _score


@pytest.fixture(scope="session")
def apparel() -> Callable[[dt.date], pd.DataFrame]:
    """``apparel(calibration_end)``: the CLVTools apparel data (tests/data/apparel; 600 customers,
    all acquired 2005-01-02) as clvmodel summarises it: weeks, same-day purchases merged. Each
    calibration end is summarised once per session."""
    import functools

    from clvmodel import io as clv_io
    from clvmodel.config import DataConfig

    path = Path(__file__).resolve().parent / "data" / "apparel" / "transactions.csv"

    @functools.lru_cache(maxsize=None)
    def summary(calibration_end: dt.date) -> pd.DataFrame:
        con = clv_io.connect()
        try:
            clv_io.load_transactions(
                con, DataConfig(source=str(path), columns={"customer_id": "Id", "date": "Date", "amount": "Price"})
            )
            return rfm.summarise(con, time_unit="week", calibration_end=calibration_end).summary
        finally:
            con.close()

    return lambda calibration_end: summary(calibration_end).copy()


@pytest.fixture(scope="session")
def apparel_covariates(apparel: Callable[[dt.date], pd.DataFrame]) -> pd.DataFrame:
    """The apparel summary to 2006-12-31 (104 weeks, T = 104 for all 600 customers) with each
    customer's raw 0/1 ``Gender`` and ``Channel`` from tests/data/apparel/customers.csv: the set-up
    of CLVTools 0.12.1's covariate estimates in REFERENCE.md. Read-only."""
    path = Path(__file__).resolve().parent / "data" / "apparel" / "customers.csv"
    customers = pd.read_csv(path, dtype={"Id": str}).rename(columns={"Id": "customer_id"})
    return apparel(dt.date(2006, 12, 31)).merge(customers, on="customer_id", how="left", validate="one_to_one")
