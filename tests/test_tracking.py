"""The MLflow side: pyfunc loading and the REST server of `mlflow models serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from clvmodel.artifact import load
from clvmodel.predict import score

ROWS = pd.DataFrame(
    {
        "customer_id": ["00004", "00018", "x26"],
        "frequency": [2.0, 0.0, 26.0],
        "recency": [30.428571, 0.0, 30.85714],
        "T": [38.857143, 38.428571, 31.0],
        "monetary_value": [22.345, 0.0, 40.0],
    }
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pyfunc_predict_equals_score(trained_cdnow):
    pyfunc = mlflow.pyfunc.load_model(str(trained_cdnow.model_dir))
    expected = score(load(str(trained_cdnow.model_dir)), ROWS, horizon=52)
    pd.testing.assert_frame_equal(pyfunc.predict(ROWS, params={"horizon": 52}), expected)


def test_model_logged_to_the_run_loads_by_uri(trained_cdnow, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_cdnow.tracking_uri)
    monkeypatch.chdir(trained_cdnow.workdir)
    model = load(f"runs:/{trained_cdnow.run_id}/model")
    assert model.purchase_model.params_ == load(str(trained_cdnow.model_dir)).purchase_model.params_


@pytest.fixture()
def server(trained_cdnow, tmp_path):
    """`mlflow models serve` on a free loopback port; stopped (with its workers) at the end."""
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", str(trained_cdnow.model_dir),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("model server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_rest_invocations_equal_clvmodel_score(server, trained_cdnow, tmp_path):
    body = json.dumps({"dataframe_split": ROWS.to_dict(orient="split", index=False), "params": {"horizon": 52}})
    request = urllib.request.Request(
        f"{server}/invocations", data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = pd.DataFrame(json.loads(response.read())["predictions"])
    # The same rows through the CLI, as a user would.
    from clvmodel.cli import main

    rfm = tmp_path / "rows.csv"
    ROWS.to_csv(rfm, index=False)
    out = tmp_path / "scores.csv"
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(out),
                 "--horizon", "52"]) == 0
    expected = pd.read_csv(out, dtype={"customer_id": str})
    assert list(answer.columns) == list(expected.columns)
    assert answer["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in ("p_alive", "expected_purchases", "expected_order_value", "predicted_clv", "historical_clv"):
        pd.testing.assert_series_equal(answer[column], expected[column], rtol=1e-12, check_dtype=False)
    assert answer["segment"].tolist() == expected["segment"].tolist()


def test_registered_model_loads_by_name_and_version(trained_cdnow, monkeypatch):
    """`clvmodel score --model models:/NAME/VERSION` resolves through the registry."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_cdnow.tracking_uri)
    monkeypatch.chdir(trained_cdnow.workdir)
    version = mlflow.register_model(f"runs:/{trained_cdnow.run_id}/model", "cdnow-test")
    model = load(f"models:/cdnow-test/{version.version}")
    assert model.primary == load(str(trained_cdnow.model_dir)).primary
    assert model.challenger is not None  # the skops file travels with the registered model
