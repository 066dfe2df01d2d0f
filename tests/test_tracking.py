"""The MLflow side: pyfunc loading (clvmodel.tracking), the REST server of `mlflow models serve`, writing model
directories (clvmodel.integrations.mlflow_tracking)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
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
import yaml

from clvmodel import modeldir, staging
from clvmodel.integrations.mlflow_tracking import save_model_dir
from clvmodel import load_model as load  # resolves runs:/ and models:/ URIs
from clvmodel.errors import ClvError
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


# --- replacing a model directory (issue 12, items 3 and 6) --------------------------------------

BAD = Path(__file__).resolve().parent / "data" / "bad"
CLVMODEL = Path(sys.executable).with_name("clvmodel")


def _pyenv() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _kill_while_staging(target: Path) -> None:
    """A process that makes target's staging folder, writes half a file and is SIGKILLed."""
    code = ("import os, signal, sys; from clvmodel.staging import make_staging; "
            "folder = make_staging(sys.argv[1]); (folder / 'scored.parquet').write_text('half'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code, str(target)], env=_pyenv(), timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL


def test_a_folder_that_is_not_a_model_is_refused_and_kept(trained_cdnow, tmp_path, monkeypatch):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.docx").write_text("keep")
    with pytest.raises(ClvError) as caught:
        save_model_dir(trained_cdnow.result.model, precious)
    assert str(caught.value) == (
        f"output.model_dir {precious} exists and is not a clvmodel model directory (no MLmodel file); clvmodel train "
        "replaces only a model directory it wrote: set output.model_dir to a new or empty folder, or move this one "
        "away yourself")
    assert [p.name for p in precious.iterdir()] == ["thesis.docx"] and (precious / "thesis.docx").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]  # no staging left either
    # train checks before it reads or fits anything.
    from clvmodel import train as train_module
    from clvmodel.config import load_config

    monkeypatch.setattr(train_module.io, "load_transactions", lambda *a, **k: pytest.fail("read before the check"))
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml",
                         [f"output.model_dir={precious}", "tracking.enabled=false"])
    with pytest.raises(ClvError, match="is not a clvmodel model directory"):
        train_module.train(config)


def test_a_model_with_a_users_file_in_it_is_refused(trained_cdnow, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ClvError, match=r"\(file 'notes.txt' is not in its manifest \(added after training\)\)"):
        save_model_dir(trained_cdnow.result.model, target)
    assert (target / "notes.txt").read_text() == "mine"
    (target / "notes.txt").unlink()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ClvError, match="is a symbolic link"):
        save_model_dir(trained_cdnow.result.model, link)


def test_an_empty_folder_and_an_older_model_are_replaced(trained_cdnow, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    save_model_dir(trained_cdnow.result.model, empty)
    assert modeldir.verify(empty).model.name == "cdnow"
    older = tmp_path / "older"  # written before the manifest existed
    shutil.copytree(trained_cdnow.model_dir, older)
    (older / "clvmodel.manifest.json").unlink()
    (older / "report.html").unlink(missing_ok=True)  # nor the HTML report: the files of that older version
    save_model_dir(trained_cdnow.result.model, older)
    assert modeldir.verify(older).model.name == "cdnow"


def test_a_replaced_model_is_never_missing(trained_cdnow, tmp_path, monkeypatch):
    """Every rename leaves a whole model at the path: the swap is one renameat2(RENAME_EXCHANGE)."""
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    before = (target / "MLmodel").read_text()
    seen: list[bool] = []
    rename = Path.rename

    def spy(self: Path, other: str | Path) -> Path:
        moved = rename(self, other)
        seen.append((target / "MLmodel").is_file())
        return moved

    monkeypatch.setattr(Path, "rename", spy)
    save_model_dir(trained_cdnow.result.model, target)
    assert all(seen), "a rename left the model directory missing"
    assert (target / "MLmodel").read_text() != before  # the new one (another model_uuid)
    assert modeldir.verify(target).model.name == "cdnow"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging, no old copy


def test_without_an_atomic_exchange_the_old_model_waits_in_marked_staging(trained_cdnow, tmp_path, monkeypatch):
    """The fallback: old aside into the marked staging folder; a kill between the renames is undone."""
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    monkeypatch.setattr(modeldir, "_exchange", lambda a, b: False)
    save_model_dir(trained_cdnow.result.model, target)
    assert modeldir.verify(target).model.name == "cdnow"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # Killed after moving the old model aside: the next run puts it back before anything else.
    old_uuid = (target / "MLmodel").read_text()
    _kill_while_staging(target)
    (left,) = tmp_path.glob(".model.*")
    target.rename(left / "previous")
    assert staging.clean_stale(target) == [left]
    assert (target / "MLmodel").read_text() == old_uuid and not left.exists()


def test_staging_left_by_a_killed_train_is_removed_by_the_next(trained_cdnow, tmp_path):
    """SIGKILL while `clvmodel train` writes the model; the next train removes what it left."""
    config = tmp_path / "small.yaml"
    target = tmp_path / "trained"
    config.write_text(yaml.safe_dump({
        "name": "small", "data": {"source": str(BAD / "duplicate_rows.csv")}, "models": ["historical", "bgnbd"],
        "intervals": {"draws": 0}, "tracking": {"enabled": False}, "output": {"model_dir": str(target)},
    }))
    process = subprocess.Popen([str(CLVMODEL), "train", str(config)], cwd=tmp_path, env=_pyenv(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".trained.*")):
            assert process.poll() is None, "train ended before its staging folder was seen"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert list(tmp_path.glob(".trained.*")), "the kill left no staging folder to clean"
    # Not ours, or not abandoned: left alone.
    (tmp_path / ".trained.backup").mkdir()
    (tmp_path / ".trained.backup" / "mine.txt").write_text("mine")
    live = staging.make_staging(target)  # this process is alive: a concurrent run's folder
    done = subprocess.run([str(CLVMODEL), "train", str(config)], cwd=tmp_path, env=_pyenv(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob(".trained.*")) == sorted([".trained.backup", live.name])
    assert modeldir.verify(target).model.name == "small"


def test_staging_left_by_a_killed_score_is_removed_by_the_next(trained_cdnow, tmp_path):
    from clvmodel.cli import main

    rows = tmp_path / "rows.csv"
    ROWS.to_csv(rows, index=False)
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    _kill_while_staging(out)
    assert len(list(out.parent.glob(".scores.csv.*"))) == 1
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rows), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv"]
    from clvmodel import staging

    assert not [f for f in staging._HELD if f.parent == out.parent], "the score released its staging lock"


def _kill_during_atomic_write(target: Path) -> None:
    """A process SIGKILLed in the middle of io's atomic write of ``target``."""
    code = ("import os, signal, sys; from pathlib import Path; from clvmodel import io; "
            "io._atomic(Path(sys.argv[1]), lambda tmp: (open(tmp, 'w').write('half'), os.kill(os.getpid(), signal.SIGKILL)))")
    done = subprocess.run([sys.executable, "-c", code, str(target)], env=_pyenv(), timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL


def test_a_temporary_file_of_a_killed_atomic_write_is_removed_by_the_next(tmp_path):
    """io._atomic writes inside a staging folder, so what a kill leaves is cleaned by the next write."""
    from clvmodel import io

    out = tmp_path / "rfm.csv"
    _kill_during_atomic_write(out)
    assert [p.name for p in tmp_path.iterdir()] != [], "the kill left nothing to clean"
    io.write_table(pd.DataFrame({"customer_id": ["1"]}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rfm.csv"]


def test_only_an_exact_staging_name_with_clvmodels_contents_and_a_free_lock_is_removed(tmp_path):
    target = tmp_path / "m"
    lookalike = tmp_path / ".m.clvmodel-2024-backup"  # a user's backup: pid-like, not mkdtemp's suffix
    lookalike.mkdir()
    (lookalike / "MLmodel").write_text("mine")
    users = tmp_path / ".m.clvmodel-1-abcd_123"  # the exact shape, but holding a user's file
    users.mkdir()
    (users / "thesis.docx").write_text("mine")
    live = staging.make_staging(target)  # this process holds its lock: a live run, however old
    os.utime(live, (0, 0))
    _kill_while_staging(target)
    dead = [p for p in tmp_path.glob(".m.clvmodel-*") if p not in {lookalike, users, live}]
    assert len(dead) == 1
    assert staging.clean_stale(target) == dead
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([lookalike.name, users.name, live.name])
    staging.release(live)
    assert not live.exists()


def test_a_live_run_in_another_process_is_not_cleaned_whatever_its_pid(tmp_path):
    """The lock, not the process id: a run of another PID namespace (its pid unknown here) is live."""
    target = tmp_path / "m"
    code = ("import sys, time; from clvmodel.staging import make_staging; make_staging(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", code, str(target)], env=_pyenv(), stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        (folder,) = tmp_path.glob(".m.clvmodel-*")
        renamed = folder.with_name(f".m.clvmodel-999999999-{folder.name[-8:]}")  # a pid no process has here
        folder.rename(renamed)
        assert staging.clean_stale(target) == [] and renamed.exists()
    finally:
        process.kill()
        process.wait()
    assert staging.clean_stale(target) == [renamed]


def test_when_the_second_rename_fails_the_previous_model_is_put_back(trained_cdnow, tmp_path, monkeypatch):
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    before = (target / "MLmodel").read_bytes()
    monkeypatch.setattr(modeldir, "_exchange", lambda a, b: False)
    rename = Path.rename

    def failing(self: Path, other: str | Path) -> Path:
        if self.name == "model" and Path(other) == target:  # new -> target: the disk is full
            raise OSError(28, "No space left on device")
        return rename(self, other)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(ClvError, match="No space left on device"):
        save_model_dir(trained_cdnow.result.model, target)
    assert (target / "MLmodel").read_bytes() == before
    assert modeldir.verify(target).model.name == "cdnow"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_users_folder_is_refused_without_reading_it(trained_cdnow, tmp_path, monkeypatch):
    """check_replaceable reads MLmodel and lstat-s the rest: a 1 GB sparse file is refused unread."""
    monkeypatch.setattr(modeldir, "read_tree", lambda *a: pytest.fail("the whole tree was read"))
    big = tmp_path / "big"
    big.mkdir()
    with open(big / "disk.img", "wb") as handle:
        handle.truncate(2**30)
    with pytest.raises(ClvError, match=r"\(no MLmodel file\)"):
        modeldir.check_replaceable(big)
    model = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, model)
    with open(model / "disk.img", "wb") as handle:
        handle.truncate(2**30)
    with pytest.raises(ClvError, match="holds more than 256 MB"):
        modeldir.check_replaceable(model)
    (model / "disk.img").unlink()
    (model / "notes.txt").write_text("mine")
    with pytest.raises(ClvError, match=r"file 'notes.txt' is not in its manifest"):
        modeldir.check_replaceable(model)


# --- the model directory is MLflow's format, written without importing mlflow (issue 16) --------------


def _mlflows_own_writer(model, path: Path) -> None:
    """The call save_model_dir made before issue 16: MLflow's writer, the oracle of write_pyfunc_dir."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    from clvmodel.integrations.mlflow_tracking import _example, _requirements, _signature

    spec = _signature(model)
    inputs = Schema([ColSpec(c["type"], c["name"], required=c["required"]) for c in json.loads(spec["inputs"])])
    params = ParamSchema([ParamSpec(p["name"], p["type"], p["default"]) for p in json.loads(spec["params"])])
    example = _example(model)
    source = model.write_json(path.parent / f"{path.name}.src" / "clvmodel.json")
    mlflow.pyfunc.save_model(
        path=str(path), loader_module=modeldir.LOADER_MODULE, data_path=str(source),
        signature=ModelSignature(inputs=inputs, params=params),
        input_example=pd.DataFrame(example["data"], columns=example["columns"]), pip_requirements=_requirements(),
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained_subscription(tmp_path_factory):
    from clvmodel.artifact import load as load_dir
    from clvmodel.cli import main

    folder = tmp_path_factory.mktemp("subscription") / "model"
    config = Path(__file__).resolve().parents[1] / "configs" / "subscription_regular.yaml"
    assert main(["train", str(config), "--no-tracking", "--set", f"output.model_dir={folder}"]) == 0
    return load_dir(folder)


@pytest.mark.parametrize("kind", ["purchases", "subscription"])
def test_the_model_directory_equals_mlflows_own(kind, trained_cdnow, trained_subscription, tmp_path):
    """Every file as mlflow.pyfunc.save_model writes it; in MLmodel, only the run's uuid and time differ."""
    from clvmodel.integrations.mlflow_tracking import write_pyfunc_dir

    model = trained_cdnow.result.model if kind == "purchases" else trained_subscription
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    write_pyfunc_dir(model, ours)
    _mlflows_own_writer(model, theirs)
    mine, expected = _files(ours), _files(theirs)
    assert sorted(mine) == sorted(expected)
    ours_spec, theirs_spec = yaml.safe_load(mine.pop("MLmodel")), yaml.safe_load(expected.pop("MLmodel"))
    for spec in (ours_spec, theirs_spec):
        assert len(spec.pop("model_uuid")) == 32
        dt.datetime.fromisoformat(spec.pop("utc_time_created"))
    assert ours_spec == theirs_spec
    assert mine == expected  # the JSON document, the examples, conda.yaml, python_env.yaml, requirements.txt
    # So it loads as MLflow's does: test_pyfunc_predict_equals_score loads a trained one with mlflow.


def test_an_untracked_train_never_imports_mlflow(tmp_path):
    """`clvmodel train --no-tracking` writes the MLflow model directory without mlflow (1.5-2 s of import)."""
    config = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
    code = ("import sys; from clvmodel.cli import main; "
            f"code = main(['train', {str(config)!r}, '--no-tracking', '--set', 'output.model_dir={tmp_path / 'model'}', "
            "'--set', 'models=[bgnbd,gamma_gamma]', '--set', 'model=bgnbd']); "
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "model" / "MLmodel").is_file()


def test_log_data_records_what_log_params_and_log_metrics_record(tmp_path, monkeypatch):
    """One batch, same record: text params (None as null, cut at 6000), finite metrics only (NaN skipped)."""
    from clvmodel.integrations import mlflow_tracking as tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    params = {f"p{i}": i for i in range(150)} | {"none": None, "long": "x" * 7000}  # over MLflow's 100 a batch
    metrics = {"a": 1.5, "b": float("nan"), "c": None, "d": 3}
    with tracking.run("log-data", run_name="two calls") as two:
        tracking.log_params(params)
        tracking.log_metrics(metrics)
    with tracking.run("log-data", run_name="one batch") as one:
        tracking.log_data(params, metrics)
    client = mlflow.MlflowClient()
    assert client.get_run(one).data.params == client.get_run(two).data.params
    assert client.get_run(one).data.metrics == client.get_run(two).data.metrics == {"a": 1.5, "d": 3.0}
    assert client.get_run(one).data.params["none"] == "null" and len(client.get_run(one).data.params["long"]) == 6000


def _small_cdnow(model_dir: Path) -> list[str]:
    """`clvmodel train` arguments: the CDNOW demo with BG/NBD and Gamma-Gamma only (a few seconds)."""
    config = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
    return ["train", str(config), "--set", f"output.model_dir={model_dir}", "--set", "models=[bgnbd,gamma_gamma]",
            "--set", "model=bgnbd"]


@pytest.mark.parametrize("uri", ["bogus://nowhere", "sqlite:////proc/no-such-dir/mlflow.db"])
def test_a_bad_tracking_uri_is_one_line_and_the_model_is_kept(uri, tmp_path, monkeypatch, capsys):
    """A store that cannot be opened is a user's setting, not a crash: one line, exit 2 (was MLflow's
    traceback, exit 1); the model directory, written before tracking, is kept."""
    from clvmodel.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    assert main(_small_cdnow(tmp_path / "model")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"clvmodel: error: cannot log to the MLflow tracking store {uri} (experiment 'cdnow'): ")
    assert err.rstrip().endswith("; check MLFLOW_TRACKING_URI")
    assert (tmp_path / "model" / "MLmodel").is_file()


def test_a_tracking_uri_password_is_never_printed(tmp_path, monkeypatch, capsys):
    """A database URI's password stays out of the one-line error (review of issue 16)."""
    from clvmodel.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://alice:s3cret-pw@127.0.0.1:1/mlflow")
    monkeypatch.chdir(tmp_path)
    assert main(_small_cdnow(tmp_path / "model")) == 2
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err and err.count("\n") == 1, err
    assert "postgresql://alice:***@127.0.0.1:1/mlflow" in err
