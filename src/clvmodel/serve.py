"""``clvmodel serve``: a REST server for a model directory, verified whole before it starts.

Why not ``mlflow models serve``: MLflow imports whatever ``loader_module`` and ``code`` a model
directory's ``MLmodel`` names, so serving a directory from someone else runs their code. This
server imports no code named by the directory and no mlflow at all: :func:`clvmodel.modeldir.verify`
reads every file once and checks it (see there), the model is built from those checked bytes
(:func:`clvmodel.modeldir.load_verified`), and only then does the port open.

The REST interface is MLflow's scoring protocol, so clients written for ``mlflow models serve``
keep working: ``POST /invocations`` with ``Content-Type: application/json`` and a body
``{"dataframe_split": {"columns": [...], "data": [[...], ...]}, "params": {...}}`` or
``{"dataframe_records": [{...}, ...], "params": {...}}``; the answer is ``{"predictions": [one
record per customer]}``. A request whose rows have no history (none of ``frequency, recency, T``;
only ``channel`` and/or the model's covariates, and optionally ``customer_id``) asks for the value
of customers not acquired yet: each row gets its acquisition value
(:func:`clvmodel.acquisition.acquisition_table`, through the model's pipeline). ``GET /ping``
and ``GET /health`` answer 200, ``GET /version`` the clvmodel version.

Bounded, so that one client cannot hold or exhaust the server (:class:`Limits`):

* a body over ``max_body`` bytes is refused with 413 (checked on ``Content-Length`` and while
  reading, so a chunked body is cut off too); more than ``max_rows`` rows, 413;
* more than :data:`MAX_COLUMNS` columns, or a JSON integer of more than 20 digits, 400, before
  a frame is built;
* parsing and scoring run in a pool of ``threads`` worker threads, so ``/ping`` and other requests are
  answered while one request is being scored; when all are busy a request gets 503 at once
  rather than queueing without bound; at most :data:`CONNECTIONS` connections are open at once;
* a request not parsed and scored within ``timeout`` seconds gets 503. Python cannot stop a thread, so the
  computation finishes in the background and keeps its worker until then; what bounds that time
  is the row limit, the horizon limit of :func:`clvmodel.predict.score` and the body size.

Errors answer ``{"error_code": ..., "message": one line}``: 400 for a bad request (the message
of :class:`~clvmodel.errors.ClvError`, the model directory's path replaced by the model's name),
500 for a bug (details only in the server's log). Never a stack trace, never a server path.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from clvmodel import __version__
from clvmodel.artifact import TrainedModel
from clvmodel.config import cut, excerpt
from clvmodel.errors import ClvError
from clvmodel.modeldir import load_verified, verify

__all__ = ["Limits", "build_app", "serve"]

#: Open connections at most (each costs a coroutine, not a thread; scoring is bounded apart).
CONNECTIONS = 64
#: Columns of one request at most (a model takes 2 to 5): checked before a frame is built.
MAX_COLUMNS = 64
#: Digits of a JSON integer at most: no count, period or id number is longer, and a longer one
#: overflows a float.
_MAX_DIGITS = 20


def _inputs(model: TrainedModel) -> list[str]:
    from clvmodel import pipelines

    return list(pipelines.for_model(model).inputs)


@dataclass(frozen=True)
class Limits:
    """Per-request bounds of the server; see the module docstring."""

    max_body: int = 10 * 2**20
    max_rows: int = 100_000
    timeout: float = 30.0
    threads: int = 2

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout, (int, float)) and math.isfinite(self.timeout) and self.timeout > 0):
            raise ClvError(f"--timeout must be a number of seconds > 0, got {self.timeout}")
        for name in ("max_body", "max_rows", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ClvError(f"{name} must be a whole number >= 1, got {value}")


class RequestError(Exception):
    """A request refused with ``status`` and a one-line message."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _one_line(text: str, limit: int = 500) -> str:
    return cut(text, limit)


def _reject_constant(name: str) -> float:
    raise RequestError(400, f"the request holds {name}, which is not a JSON number; send finite numbers (or null "
                            "for a missing value)")


def _int(text: str) -> int:
    """A JSON integer, refused when longer than any count or id number (a float would overflow)."""
    if len(text) > _MAX_DIGITS:
        raise RequestError(400, f"the number {cut(text, 40)} is out of range ({len(text):,} digits); send numbers "
                                f"of at most {_MAX_DIGITS} digits")
    return int(text)


def _finite(value: Any, name: str, kind: type) -> Any:
    """A params value of the type the model's signature declares (``long`` or ``double``), finite;
    ``object`` (a horizon): also text with a unit, ``"3 years"`` (read by :mod:`clvmodel.units`)."""
    if kind is object and isinstance(value, str):
        if len(value) > 40:
            raise RequestError(400, f"params.{name} is too long, got {excerpt(value, 40)}; use e.g. \"3 years\" or 52")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"params.{name} must be a number, got {excerpt(value, 40)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        raise RequestError(400, f"params.{name} is out of range, got {excerpt(value, 40)}") from None
    if not finite:
        raise RequestError(400, f"params.{name} must be finite, got {value}")
    if kind in (int, object):
        if not float(value).is_integer():
            raise RequestError(400, f"params.{name} must be a whole number of periods, got {value}")
        return int(value)
    return float(value)


def parse_request(body: bytes, model: TrainedModel, limits: Limits) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows and params of an MLflow-style JSON request, or :class:`RequestError`."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_int=_int)
    except RequestError:
        raise
    except (ValueError, RecursionError) as err:
        raise RequestError(400, f"the body is not valid JSON ({type(err).__name__})") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "the body must be a JSON object with dataframe_split or dataframe_records")
    keys = set(payload) - {"params"}
    if keys not in ({"dataframe_split"}, {"dataframe_records"}):
        raise RequestError(400, "the body must hold exactly one of dataframe_split or dataframe_records (and "
                                f"optionally params), got keys {excerpt(sorted(map(str, payload))[:6])}")
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list) or not isinstance(split.get("data"), list):
            raise RequestError(400, "dataframe_split must be {\"columns\": [...], \"data\": [[...], ...]}")
        rows, columns = split["data"], split["columns"]
        if len(columns) > MAX_COLUMNS:
            raise RequestError(400, f"{len(columns):,} columns in dataframe_split.columns, at most {MAX_COLUMNS}; "
                                    f"send the model's input columns ({', '.join(_inputs(model))})")
        if not all(isinstance(c, str) for c in columns):
            raise RequestError(400, "dataframe_split.columns must be column names (text)")
        if not all(isinstance(r, list) and len(r) == len(columns) for r in rows[: limits.max_rows + 1]):
            raise RequestError(400, f"every row of dataframe_split.data must be a list of {len(columns)} values, one per column")
    else:
        rows = payload["dataframe_records"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows[: limits.max_rows + 1]):
            raise RequestError(400, "dataframe_records must be a list of {column: value} objects")
        names: set[str] = set()
        for record in rows[: limits.max_rows + 1]:
            names.update(record)  # a record has at most MAX_COLUMNS keys, checked before it is added
            if len(record) > MAX_COLUMNS or len(names) > MAX_COLUMNS:
                raise RequestError(400, f"more than {MAX_COLUMNS} distinct columns in dataframe_records; send the "
                                        f"model's input columns ({', '.join(_inputs(model))})")
        columns = None
    if len(rows) > limits.max_rows:
        raise RequestError(413, f"{len(rows):,} rows in one request, at most {limits.max_rows:,}; split the request",
                           "REQUEST_LIMIT_EXCEEDED")
    if not rows:
        raise RequestError(400, "the request has no rows to score")
    frame = pd.DataFrame(rows, columns=columns)
    if frame.columns.duplicated().any():
        raise RequestError(400, "duplicate column names in the request: "
                                f"{excerpt(sorted(set(frame.columns[frame.columns.duplicated()]))[:5])}")
    if "customer_id" in frame.columns:
        ids = frame["customer_id"]
        bad = ids[~ids.map(lambda v: isinstance(v, str))]
        if len(bad):
            raise RequestError(400, f"customer_id must be text (a JSON string, leading zeros kept), got "
                                    f"{excerpt(bad.tolist()[0], 40)} in {len(bad):,} row(s)")
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError(400, "params must be an object, e.g. {\"horizon\": 52}")
    from clvmodel import pipelines

    allowed = pipelines.for_model(model).params
    unknown = sorted(map(str, set(params) - set(allowed)))
    if unknown:
        raise RequestError(400, f"unknown params {excerpt(unknown[:5])}; this model takes {sorted(allowed)}")
    clean = {name: _finite(value, name, allowed[name]) for name, value in params.items() if value is not None}
    return frame, clean


def answer(body: bytes, model: TrainedModel, limits: Limits) -> bytes:
    """The whole work of one request, run in a worker under the timeout: parse, score, serialise."""
    frame, params = parse_request(body, model, limits)
    try:
        return _records(predict(model, frame, params), _valuation(model, params))
    except OverflowError:  # a value no float holds reached the arithmetic (the row checks are elsewhere)
        raise RequestError(400, "a number in the request is out of range; send finite numbers of ordinary size") from None


def predict(model: TrainedModel, frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Score the rows, as :class:`clvmodel.tracking.ClvPyfunc` does for ``mlflow models serve``: with
    the model's pipeline (:func:`clvmodel.pipelines.for_model`)."""
    from clvmodel import pipelines

    return pipelines.for_model(model).score(model, frame, params)


def _valuation(model: TrainedModel, params: dict[str, Any]) -> dict[str, Any]:
    """What the answer was valued with: horizon (whole periods, the unit, as asked) and per-period rate."""
    from clvmodel import pipelines

    used = pipelines.valuation(model, params)
    out: dict[str, Any] = {"time_unit": used.unit, "discount_rate": used.discount_rate}
    if used.annual_discount_rate is not None:
        out["annual_discount_rate"] = used.annual_discount_rate
    if not model.subscription:
        out["horizon"] = used.periods
        if used.horizon.given is not None:
            out["horizon_given"] = used.horizon.given
    out["description"] = used.describe() if not model.subscription else used.describe().split("; ", 1)[1]
    warnings = used.warnings()
    if warnings:
        out["warnings"] = warnings
    return out


def _records(frame: pd.DataFrame, valuation: dict[str, Any] | None = None) -> bytes:
    """``{"predictions": [...], "valuation": {...}}`` with exact floats (``repr``), missing values as null."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    body: dict[str, Any] = {"predictions": records}
    if valuation is not None:
        body["valuation"] = valuation
    text = json.dumps(body, allow_nan=False,
                      default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return text.encode("utf-8")


class _Scorer:
    """A bounded pool of worker threads; see the module docstring."""

    def __init__(self, model: TrainedModel, limits: Limits) -> None:
        self.model, self.limits = model, limits
        self.pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="clvmodel-score")
        self.slots = threading.BoundedSemaphore(limits.threads)

    async def __call__(self, body: bytes) -> bytes:
        if not self.slots.acquire(blocking=False):
            raise RequestError(503, f"all {self.limits.threads} scoring workers are busy; retry shortly",
                               "TEMPORARILY_UNAVAILABLE")
        try:
            # Parsing too: a 10 MB body of 700,000 keys would otherwise hold the event loop.
            future = self.pool.submit(answer, body, self.model, self.limits)
        except BaseException:
            self.slots.release()
            raise
        # The slot is freed when the computation ends, not when the client gives up on it.
        future.add_done_callback(lambda _: self.slots.release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout)
        except asyncio.TimeoutError:
            raise RequestError(503, f"scoring took longer than {self.limits.timeout:g} s; send fewer rows or a shorter "
                                    "horizon", "TEMPORARILY_UNAVAILABLE") from None


async def _read_body(receive_stream: Any, headers: Any, cap: int) -> bytes:
    declared = headers.get("content-length")
    too_large = RequestError(413, f"the request body is larger than {cap:,} bytes; split the request",
                             "REQUEST_LIMIT_EXCEEDED")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise too_large
    chunks, size = [], 0
    async for chunk in receive_stream:
        size += len(chunk)
        if size > cap:  # a chunked body has no Content-Length: stop reading at the cap
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(model: TrainedModel, directory: Path, limits: Limits) -> Any:
    """The Starlette application serving ``model`` (loaded from ``directory``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    scorer = _Scorer(model, limits)
    # Server paths never reach a client: a message naming the model directory names the model.
    hidden = sorted({str(directory), str(directory.resolve())}, key=len, reverse=True)

    def error(status: int, code: str, message: str) -> JSONResponse:
        for path in hidden:
            message = message.replace(path, f"model {model.name!r}")
        return JSONResponse({"error_code": code, "message": _one_line(message)}, status_code=status)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        return PlainTextResponse(__version__)

    async def invocations(request: Request) -> Response:
        try:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise RequestError(415, f"Content-Type must be application/json, got {excerpt(kind, 60)}",
                                   "UNSUPPORTED_MEDIA_TYPE")
            body = await _read_body(request.stream(), request.headers, limits.max_body)
            return Response(await scorer(body), media_type="application/json")
        except RequestError as err:
            return error(err.status, err.code, str(err))
        except ClvError as err:
            return error(400, "BAD_REQUEST", str(err))
        except Exception:  # a bug in clvmodel: the details go to the server's log, not to the client
            traceback.print_exc(file=sys.stderr)
            return error(500, "INTERNAL_ERROR", "internal error while scoring; the server's log has the details")

    app = Starlette(routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
    ])
    app.state.scorer = scorer
    return app


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 5000, limits: Limits | None = None) -> None:
    """Verify ``model_dir`` whole, then serve it until SIGINT/SIGTERM.

    Raises
    ------
    ClvError
        The directory fails verification (nothing is started), or the address cannot be bound.
    """
    limits = limits or Limits()
    verified = verify(model_dir)
    model = load_verified(verified)
    app = build_app(model, verified.directory, limits)
    try:  # bound here, so that a port in use is one line, not uvicorn's log and exit
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as err:
        raise ClvError(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port") from None
    import uvicorn

    # limit_concurrency: connections beyond it get 503 from uvicorn, so idle or slow clients
    # (a body sent byte by byte) cannot pile up without bound.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
                            limit_concurrency=CONNECTIONS)
    print(f"clvmodel serve: model {model.name!r} from {verified.directory} verified ({len(verified.files)} files); "
          f"listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.scorer.pool.shutdown(wait=False, cancel_futures=True)
        sock.close()
