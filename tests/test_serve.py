"""``clvmodel serve``: the whole model directory verified first, then a bounded REST server.

Every server here is the installed ``clvmodel`` command started by the test on a free loopback
port, in its own process group, and stopped by the test (that group only).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clvmodel import modeldir
from clvmodel.errors import ClvError
from clvmodel.integrity import MANIFEST_NAME, document_checksum, write_manifest

CLVMODEL = Path(sys.executable).with_name("clvmodel")
SRC = Path(__file__).resolve().parents[1] / "src"
COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value"]
ROWS = [["00004", 2.0, 30.428571, 38.857143, 22.345], ["00018", 0.0, 0.0, 38.428571, 0.0], ["x26", 26.0, 30.85714, 31.0, 40.0]]
EVIL = """\
from pathlib import Path
Path({marker!r}).write_text("the model directory's code ran")
def _load_pyfunc(path):
    raise SystemExit("evil")
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CLVMODEL_DEBUG", None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(trained_cdnow, tmp_path_factory) -> Path:
    """A copy of the model trained through the CLI (each tamper test copies it again)."""
    copy = tmp_path_factory.mktemp("serve") / "cdnow"
    shutil.copytree(trained_cdnow.model_dir, copy)
    return copy


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def _refused(directory: Path, cwd: Path) -> str:
    """Run ``clvmodel serve`` on ``directory``; assert one line and exit 2; return the message."""
    done = subprocess.run([str(CLVMODEL), "serve", "--model", str(directory), "--port", str(_free_port())],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("clvmodel: error: "), done.stderr
    return done.stderr.removeprefix("clvmodel: error: ").strip()


def _evil(directory: Path, marker: Path) -> None:
    """Make ``directory`` name its own loader and ship it in ``code/``, manifest recomputed (an attacker)."""
    spec = yaml.safe_load((directory / "MLmodel").read_text())
    spec["flavors"]["python_function"]["loader_module"] = "evil_loader"
    spec["flavors"]["python_function"]["code"] = "code"
    (directory / "MLmodel").write_text(yaml.safe_dump(spec))
    (directory / "code").mkdir()
    (directory / "code" / "evil_loader.py").write_text(EVIL.format(marker=str(marker)))
    write_manifest(directory)


def test_mlflow_runs_the_directorys_code_and_clvmodel_serve_refuses_it(model_dir, tmp_path):
    """The threat is real (MLflow runs code/evil_loader.py), and ``clvmodel serve`` never does."""
    evil = _copy(model_dir, tmp_path)
    marker = tmp_path / "marker"
    _evil(evil, marker)
    message = _refused(evil, tmp_path)
    assert message == (f"{evil}: MLmodel names loader_module 'evil_loader', not 'clvmodel.tracking'; loading it "
                       "would run that code, refusing it")
    assert not marker.exists()
    # Control: mlflow.pyfunc.load_model on the same directory runs the directory's code.
    subprocess.run([sys.executable, "-c", f"import mlflow; mlflow.pyfunc.load_model({str(evil)!r})"], cwd=tmp_path,
                   env=_env(), capture_output=True, timeout=120, check=False)
    assert marker.exists(), "mlflow did not import the model directory's loader: the threat model changed"


@pytest.mark.parametrize("attack", ["extra_file", "edited_mlmodel", "symlink", "code_entry", "other_flavor",
                                    "data_outside", "no_manifest", "fifo"])
def test_clvmodel_serve_refuses_a_changed_directory(model_dir, tmp_path, attack):
    target = _copy(model_dir, tmp_path)
    mlmodel = target / "MLmodel"
    spec = yaml.safe_load(mlmodel.read_text())
    flavor = spec["flavors"]["python_function"]
    expected = {
        "extra_file": "file 'data/notes.txt' is not in its manifest (added after training); remove it or retrain",
        "edited_mlmodel": "file 'MLmodel' does not match its SHA-256 in the manifest (edited or corrupted); "
                          "retrain or restore the model",
        "symlink": "data/clvmodel.json is a symbolic link; a model directory holds only plain files",
        "code_entry": "MLmodel has a code entry ('code'); a clvmodel model carries no code, refusing it",
        "other_flavor": "MLmodel must have exactly the python_function flavor, has ['python_function', 'sklearn']; "
                        "another flavor loads other code, refusing it",
        "data_outside": "MLmodel's data path '../outside.json' is not inside the model directory; refusing it",
        "no_manifest": f"has no {MANIFEST_NAME} listing its files and checksums (older clvmodel); retrain the model",
        "fifo": "data/pipe is not a regular file; a model directory holds only plain files",
    }[attack]
    if attack == "extra_file":
        (target / "data" / "notes.txt").write_text("hello")
    elif attack == "edited_mlmodel":  # a comment only: still an edit
        mlmodel.write_text(mlmodel.read_text() + "# edited\n")
    elif attack == "symlink":
        data = target / "data" / "clvmodel.json"
        shutil.move(data, tmp_path / "clvmodel.json")
        data.symlink_to(tmp_path / "clvmodel.json")
    elif attack == "code_entry":  # our loader, but MLflow would also put code/ on sys.path
        flavor["code"] = "code"
        (target / "code").mkdir()
        (target / "code" / "clvmodel.py").write_text("raise SystemExit('shadowed')\n")
    elif attack == "other_flavor":
        spec["flavors"]["sklearn"] = {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"}
    elif attack == "data_outside":
        flavor["data"] = "../outside.json"
        shutil.copy(target / "data" / "clvmodel.json", tmp_path / "outside.json")
    elif attack == "no_manifest":
        (target / MANIFEST_NAME).unlink()
    elif attack == "fifo":
        os.mkfifo(target / "data" / "pipe")
    if attack in {"code_entry", "other_flavor", "data_outside"}:  # the attacker recomputes the manifest too
        mlmodel.write_text(yaml.safe_dump(spec))
        write_manifest(target)
    message = _refused(target, tmp_path) if attack in {"extra_file", "symlink", "code_entry"} else None
    if message is None:  # the same check in-process (each subprocess costs seconds of imports)
        with pytest.raises(ClvError) as caught:
            modeldir.verify(target)
        message = str(caught.value)
    assert message.endswith(expected) and message.startswith(str(target)), message
    assert "\n" not in message


def test_a_recomputed_checksum_and_manifest_are_accepted(model_dir, tmp_path):
    """What the README says: the checksums detect corruption, not tampering."""
    target = _copy(model_dir, tmp_path)
    path = target / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    document["models"]["bgnbd"]["params"]["r"] *= 2
    document["checksum"] = document_checksum(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ClvError, match="does not match its SHA-256"):
        modeldir.verify(target)
    write_manifest(target)
    assert modeldir.verify(target).model.models["bgnbd"].params_["r"] == document["models"]["bgnbd"]["params"]["r"]


def test_a_model_downloaded_from_the_registry_verifies(model_dir, tmp_path):
    """MLflow adds ``registered_model_meta`` on registration: accepted as that note, and only as that."""
    target = _copy(model_dir, tmp_path)
    note = target / "registered_model_meta"
    note.write_text("model_name: cdnow\nmodel_version: '3'\n")
    assert modeldir.verify(target).model.name == "cdnow"
    note.write_text("model_name: cdnow\nloader: !!python/name:os.system\n")
    with pytest.raises(ClvError, match="registered_model_meta is not MLflow's registry note"):
        modeldir.verify(target)


def test_a_file_changed_after_verification_is_not_used(model_dir, tmp_path):
    """The model is built from the verified bytes: no time-of-check/time-of-use gap."""
    target = _copy(model_dir, tmp_path)
    verified = modeldir.verify(target)
    (target / "data" / "clvmodel.json").write_text("{}")
    (target / "challenger" / "challenger.skops").write_bytes(b"garbage")
    model = modeldir.load_verified(verified)
    assert model.challenger is not None and model.primary == verified.document["primary"]


# --- the REST server -----------------------------------------------------------------------------


@pytest.fixture()
def start(tmp_path, started_processes) -> Iterator:
    """Start ``clvmodel serve`` with options; every server started is stopped at the end (conftest's
    ``started_processes``)."""
    started = started_processes

    def _start(directory: Path, *options: str) -> str:
        port = _free_port()
        log = (tmp_path / f"server-{port}.log").open("w")
        process = subprocess.Popen([str(CLVMODEL), "serve", "--model", str(directory), "--port", str(port), *options],
                                   stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path,
                                   start_new_session=True, stdin=subprocess.DEVNULL)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        return url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (tmp_path / f"server-{port}.log").read_text()[-3000:])
            time.sleep(0.3)

    yield _start


def _post(url: str, body: bytes | str, timeout: float = 60) -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _split(rows: list, params: dict | None = None) -> str:
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows}, **({"params": params} if params else {})})


def _assert_one_line_error(status: int, answer: dict, expected_status: int, server_paths: list[str]) -> str:
    assert status == expected_status, answer
    assert set(answer) == {"error_code", "message"}, answer  # no stack_trace
    message = answer["message"]
    assert "\n" not in message and message
    for path in server_paths:
        assert path not in message
    assert "Traceback" not in message and 'File "' not in message
    return message


def test_rest_answers_equal_clvmodel_score_and_errors_are_one_line(start, model_dir, tmp_path):
    url = start(model_dir)
    paths = [str(model_dir), str(SRC), sys.prefix]
    status, answer = _post(url, _split(ROWS, {"horizon": 52}))
    assert status == 200
    got = pd.DataFrame(answer["predictions"])
    rows = tmp_path / "rows.csv"
    pd.DataFrame(ROWS, columns=COLUMNS).to_csv(rows, index=False)
    out = tmp_path / "scores.csv"
    done = subprocess.run([str(CLVMODEL), "score", "--model", str(model_dir), "--input", str(rows), "--output", str(out),
                           "--horizon", "52"], env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    expected = pd.read_csv(out, dtype={"customer_id": str})
    assert list(got.columns) == list(expected.columns)
    for column in ("p_alive", "expected_purchases", "expected_order_value", "predicted_clv", "historical_clv"):
        pd.testing.assert_series_equal(got[column], expected[column], rtol=1e-12, check_dtype=False)
    assert got["segment"].tolist() == expected["segment"].tolist()
    records = json.dumps({"dataframe_records": [dict(zip(COLUMNS, r)) for r in ROWS], "params": {"horizon": 52}})
    assert _post(url, records) == (status, answer)

    nan = _split(ROWS, {"discount_rate": float("nan")})
    assert '"discount_rate": NaN' in nan  # what Python's json (and MLflow's client) send for a NaN
    message = _assert_one_line_error(*_post(url, nan), 400, paths)
    assert message.startswith("the request holds NaN")
    huge = _split(ROWS, {"discount_rate": 0.5}).replace("0.5", "1e400")  # parses as inf
    message = _assert_one_line_error(*_post(url, huge), 400, paths)
    assert message == "params.discount_rate must be finite, got inf"
    bad_rows = [["1", "many", 3.0, 5.0, 10.0], ["2", 1.0, 9.0, 5.0, 10.0]]
    message = _assert_one_line_error(*_post(url, _split(bad_rows)), 400, paths)
    assert "frequency" in message
    message = _assert_one_line_error(*_post(url, _split([["1", 2.0, 9.0, 5.0, 10.0]])), 400, paths)
    assert "recency > T" in message
    for body in ("{", "[]", '{"instances": [1]}', _split([["1", 1.0]]), _split([[7, 1.0, 1.0, 5.0, 1.0]]),
                 _split(ROWS, {"horizon": 1.5}), _split(ROWS, {"seed": 1}), _split(ROWS, {"margin": "high"})):
        _assert_one_line_error(*_post(url, body), 400, paths)


def _raw(url: str, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a raw request (headers, then body chunks until the server answers); return its answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            answer += part
    return answer


def test_request_size_and_rows_are_capped(start, model_dir):
    url = start(model_dir, "--max-rows", "50")
    port = url.rsplit(":", 1)[1]
    # Declared too large: refused before a byte of the body is read.
    answer = _raw(url, (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                        "Content-Length: 50000000\r\n\r\n").encode(), [b"{"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {"error_code": "REQUEST_LIMIT_EXCEEDED",
                    "message": "the request body is larger than 10,485,760 bytes; split the request"}
    # Chunked, no Content-Length: cut off once the cap is passed.
    chunk = b" " * 2**20
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 12 + [b"0\r\n\r\n"]
    answer = _raw(url, (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n").encode(), chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    status, answer = _post(url, _split([[str(i), 1.0, 1.0, 2.0, 5.0] for i in range(51)]))
    assert (status, answer["message"]) == (413, "51 rows in one request, at most 50; split the request")
    assert _post(url, _split([[str(i), 1.0, 1.0, 2.0, 5.0] for i in range(50)]))[0] == 200


def test_a_slow_request_does_not_hold_the_server(start, model_dir):
    """Past --timeout the client gets 503 at once, /ping is answered meanwhile, and with every worker
    busy a request is refused, not queued.

    Nothing here depends on how fast this machine scores: the limit (0.2 s) is far below what the
    slow requests cost (20,000 distinct customers, each with the model's 1,000 interval draws:
    seconds here), and the last request may be scored or time out, as long as it is not refused
    as busy.
    """
    url = start(model_dir, "--timeout", "0.2", "--threads", "2")
    # 20,000 distinct (x, t_x, T) rows, so the vectorised bootstrap cannot collapse them: about 4 s
    # of BG/NBD scoring here (0.5 s for 2,000), 20 times the limit.
    many = _split([[f"c{i}", float(i % 20), (i % 20) * 1.5 + (i % 13) * 0.1, 39.0 + i * 0.0001, 10.0 + i % 50]
                   for i in range(20_000)])
    one = _split(ROWS[:1])
    results: dict[str, tuple[tuple[int, dict], float]] = {}
    began = time.monotonic()

    def send(key: str) -> None:
        answer = _post(url, many)
        results[key] = (answer, time.monotonic() - began)

    workers = [threading.Thread(target=send, args=(key,)) for key in ("a", "b")]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    clock = time.monotonic()
    with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
        assert response.status == 200
    assert time.monotonic() - clock < 2
    busy = _post(url, one, timeout=10)
    assert busy == (503, {"error_code": "TEMPORARILY_UNAVAILABLE",
                          "message": "all 2 scoring workers are busy; retry shortly"})
    for worker in workers:
        worker.join(timeout=60)
    for key in ("a", "b"):
        (status, answer), seconds = results[key]
        assert (status, answer) == (503, {"error_code": "TEMPORARILY_UNAVAILABLE",
                                          "message": "scoring took longer than 0.2 s; send fewer rows or a shorter horizon"})
        assert seconds < 5, seconds  # answered at the time limit, not when the scoring ends
    # The abandoned computations end in their workers and free them: then a request is taken
    # (scored, or answered at the limit) instead of refused as busy.
    deadline = time.monotonic() + 120
    while _post(url, one)[1].get("message", "").startswith("all 2 scoring workers are busy"):
        assert time.monotonic() < deadline, "the workers were never freed"
        time.sleep(0.5)


# --- issue 12 review ------------------------------------------------------------------------------

BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{p}'] * 10 if p else ['x'] * 10)}]\n"
               for p, a in zip(["", "a", "b", "c"], "abcd"))


def test_an_mlmodel_alias_bomb_is_refused_at_the_first_alias(model_dir, tmp_path):
    target = _copy(model_dir, tmp_path)
    spec = (target / "MLmodel").read_text().replace("loader_module: clvmodel.tracking", "loader_module: *d")
    (target / "MLmodel").write_text(BOMB + spec)
    with pytest.raises(ClvError, match=r"MLmodel line 2: YAML alias \*a is not allowed"):
        modeldir.verify(target)
    with pytest.raises(ClvError, match=r"\(MLmodel line 2: YAML alias \*a is not allowed"):
        modeldir.check_replaceable(target)
    (target / "MLmodel").write_text(spec)
    (target / "registered_model_meta").write_text("a: &a x\nmodel_name: *a\n")
    with pytest.raises(ClvError, match="registered_model_meta is not MLflow's registry note"):
        modeldir.verify(target)


def test_huge_integers_in_a_request_are_a_400_of_one_line(trained_cdnow):
    from clvmodel import serve

    model, big = trained_cdnow.result.model, "9" * 400
    with pytest.raises(serve.RequestError, match="params.horizon is out of range"):
        serve._finite(int(big), "horizon", int)
    for body in (f'{{"dataframe_split": {{"columns": {json.dumps(COLUMNS)}, "data": [["1", 2, 3, 4, 5]]}}, '
                 f'"params": {{"horizon": {big}}}}}',
                 f'{{"dataframe_split": {{"columns": {json.dumps(COLUMNS)}, "data": [["1", {big}, 3, 4, 5]]}}}}'):
        with pytest.raises(serve.RequestError) as caught:
            serve.answer(body.encode(), model, serve.Limits())
        assert caught.value.status == 400 and "out of range" in str(caught.value)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_request_of_700000_columns_is_refused_before_a_frame_is_built(trained_cdnow, monkeypatch):
    from clvmodel import serve

    model = trained_cdnow.result.model
    monkeypatch.setattr(serve.pd, "DataFrame", lambda *a, **k: pytest.fail("a frame was built"))
    wide = {f"c{i}": 1 for i in range(700_000)}
    with pytest.raises(serve.RequestError, match="more than 64 distinct columns"):
        serve.parse_request(json.dumps({"dataframe_records": [wide]}).encode(), model, serve.Limits())
    split = {"dataframe_split": {"columns": list(wide), "data": [list(wide.values())]}}
    with pytest.raises(serve.RequestError, match="700,000 columns in dataframe_split.columns, at most 64"):
        serve.parse_request(json.dumps(split).encode(), model, serve.Limits())


def test_parsing_runs_in_a_worker_under_the_timeout(trained_cdnow, monkeypatch):
    """A body slow to parse holds a worker, not the event loop, and gets 503 at the timeout."""
    import asyncio

    from clvmodel import serve

    seen: list[str] = []

    def slow(body: bytes, model, limits):
        seen.append(threading.current_thread().name)
        time.sleep(1.5)
        raise AssertionError("not reached by the client")

    monkeypatch.setattr(serve, "parse_request", slow)
    scorer = serve._Scorer(trained_cdnow.result.model, serve.Limits(timeout=0.3))

    async def client() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.02)

        ticker = asyncio.create_task(tick())
        try:
            await scorer(b"{}")
        except serve.RequestError as err:
            return err.status, ticks
        finally:
            ticker.cancel()
        return 200, ticks

    status, ticks = asyncio.run(client())
    scorer.pool.shutdown(wait=True)
    assert status == 503 and seen and seen[0].startswith("clvmodel-score") and ticks >= 5
