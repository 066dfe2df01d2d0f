"""The bad-input catalogue (tests/data/bad/expected.yaml), run end to end through ``clvmodel``.

Every case runs the real command in-process (:func:`clvmodel.cli.main`). A refused input must
give exit code 2, exactly one line on stderr (``clvmodel: error: `` and the expected message, no
traceback) and write nothing; a cleaned input must exit 0 and print its counts. The score and
budget cases use one model trained per module on the bundled CDNOW sample.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from clvmodel import budget, cli, io
from clvmodel.config import load_config
from clvmodel.predict import score
from clvmodel.train import train

BAD = Path(__file__).resolve().parent / "data" / "bad"
CASES: list[dict[str, Any]] = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
#: The installed command, as a user runs it (cases with ``via: subprocess``).
CLVMODEL = Path(sys.executable).with_name("clvmodel")


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A model trained once on the CDNOW sample, its scores and synthetic channels for budget."""
    folder = tmp_path_factory.mktemp("cdnow")
    result = train(
        load_config(
            CONFIG,
            [
                f"output.model_dir={folder / 'model'}",
                "tracking.enabled=false",
                "models=[historical, bgnbd, gamma_gamma]",
                "intervals.draws=0",
            ],
        )
    )
    summary = result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    scores = score(result.model, summary)
    io.write_table(scores, folder / "scores.csv")
    io.write_table(budget.synthetic_channels(scores["customer_id"]), folder / "channels.csv")
    return {"model": folder / "model", "scores": folder / "scores.csv", "channels": folder / "channels.csv"}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _damage(model_dir: Path, how: str) -> None:
    """Break a copy of a trained model the way a user's disk, editor or newer clvmodel would."""
    path = model_dir / "data" / "clvmodel.json"
    text = path.read_text(encoding="utf-8")
    if how == "truncate_json":  # a copy interrupted half-way
        path.write_text(text[: len(text) // 2], encoding="utf-8")
        return
    if how == "nest_deep":  # 200,000 nested lists: Python's own parser overflows its recursion limit
        path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
        return
    if how == "nan_parameter":  # NaN is not JSON, though Python's parser reads it
        path.write_text(text.replace('"r": ', '"r": NaN, "r_was": ', 1), encoding="utf-8")
        return
    document = json.loads(text)
    if how == "edit_parameter":  # hand-edited, checksum left as it was
        document["models"]["bgnbd"]["params"]["r"] *= 2
    elif how == "future_format":  # written by a newer clvmodel (its own checksum is valid)
        from clvmodel.artifact import _checksum

        document["format_version"] += 1
        document["checksum"] = _checksum(document)
    else:
        raise ValueError(how)
    path.write_text(json.dumps(document), encoding="utf-8")


def _tamper(model_dir: Path, edits: dict[str, Any]) -> None:
    """Set dotted keys of a model copy's document and recompute its checksum, as an attacker can.

    The checksum is a plain SHA-256 of the document: it detects corruption, not tampering, so
    every field must be validated as hostile input whatever the checksum says.
    """
    from clvmodel.integrity import document_checksum

    path = model_dir / "data" / "clvmodel.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    document["checksum"] = document_checksum(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def _setup(steps: list[dict[str, Any]], fill: Any) -> None:
    """Lay out what a case needs before its command: ``mkdir``, ``write`` (with ``text``), ``copy`` (with ``to``)."""
    for step in steps:
        if "mkdir" in step:
            Path(fill(step["mkdir"])).mkdir(parents=True, exist_ok=True)
        elif "write" in step:
            target = Path(fill(step["write"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(fill(step["text"]), encoding="utf-8")
        elif "copy" in step:
            target = Path(fill(step["to"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(fill(step["copy"]), target)
        else:
            raise ValueError(f"unknown setup step {step}")


def _run(args: list[str], via: str, cwd: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``clvmodel ARGS`` in-process (the default) or as the installed command in a subprocess."""
    if via == "subprocess":
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
        env.pop("CLVMODEL_DEBUG", None)
        done = subprocess.run([str(CLVMODEL), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300, check=False, stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout, done.stderr
    assert via == "process", via
    capsys.readouterr()
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _param(case: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
    return pytest.param(case, id=case["case"], marks=marks)


def test_the_catalogue_is_complete() -> None:
    refused = [c for c in CASES if "error" in c]
    assert len(refused) >= 25, "at least 25 refused inputs"
    assert len({c["case"] for c in CASES}) == len(CASES), "case names are unique"
    for case in CASES:
        assert ("error" in case) != ("printed" in case), case["case"]
        assert (BAD / case["file"]).is_file(), case["file"]
    used = {c["file"] for c in CASES} | {"expected.yaml"}
    assert sorted(p.name for p in BAD.iterdir()) == sorted(used), "every file in tests/data/bad is a case"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(
    case: dict[str, Any],
    cdnow: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = BAD / case["file"]
    model = cdnow["model"]
    if case.get("damage") or case.get("tamper"):
        model = tmp_path / "damaged"
        shutil.copytree(cdnow["model"], model)
        if case.get("damage"):
            _damage(model, case["damage"])
        if case.get("tamper"):
            _tamper(model, case["tamper"])
    work = tmp_path / "cwd"  # the command's working directory: relative paths an attack writes land here
    work.mkdir()
    monkeypatch.chdir(work)
    places = {
        "{tmp}": str(tmp_path),
        "{file}": str(file),
        "{model}": str(model),
        "{output}": str(tmp_path / "out" / ("report.csv" if case["command"].startswith("budget") else "scores.csv")),
        "{model_dir}": str(tmp_path / "trained"),
        "{config}": str(tmp_path / "case.yaml"),
        "{scores}": str(cdnow["scores"]),
        "{channels}": str(cdnow["channels"]),
    }
    config = {
        "name": case["case"],
        "data": {"source": str(file)},
        "models": ["historical", "bgnbd"],  # see expected.yaml: no gamma_gamma
        "intervals": {"draws": 0},
        "tracking": {"enabled": False},
        "output": {"model_dir": places["{model_dir}"]},
    }
    Path(places["{config}"]).write_text(yaml.safe_dump(_merge(config, case.get("config") or {})), encoding="utf-8")

    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace(key, value)
        return text

    _setup(case.get("setup") or [], fill)
    kept = {path: Path(fill(path)).read_bytes() for path in case.get("unchanged") or []}
    args = [fill(arg) for arg in shlex.split(case["command"])]
    code, out, err = _run(args, case.get("via", "process"), work, capsys)
    assert "Traceback" not in out + err
    for path, content in kept.items():  # nothing lost: inputs and a user's files survive as they were
        assert Path(fill(path)).read_bytes() == content, f"{path} was changed"
    assert sorted(p.name for p in work.iterdir() if p.name not in {"mlflow.db", "mlruns"}) == [], (
        "nothing written to the working directory"
    )
    if "error" in case:
        assert (code, err) == (2, f"clvmodel: error: {fill(case['error'])}\n"), out
        leftovers = list((tmp_path / "out").rglob("*")) if (tmp_path / "out").exists() else []
        assert leftovers == [], "no output written (clvmodel score may leave the output's folder, empty)"
        if not case.get("model_dir_exists"):
            assert not Path(places["{model_dir}"]).exists(), "no model written"
        return
    assert code == 0, err
    for text in case["printed"]:
        assert text in out, out
    if case.get("output_ids"):
        written = pd.read_csv(places["{output}"], dtype={"customer_id": str})
        assert sorted(written["customer_id"]) == sorted(case["output_ids"])


# --- what the cleaned cases count, asserted on the load report itself ---------------------------


def _report(name: str, **data: Any) -> io.LoadReport:
    from clvmodel.config import DataConfig

    con = io.connect()
    try:
        return io.load_transactions(con, DataConfig(source=str(BAD / name), **data))
    finally:
        con.close()


def test_cleaning_counts_in_the_load_report() -> None:
    zero = _report("zero_amounts.csv")
    assert (zero.rows_read, zero.rows_kept, zero.zero_amount_rows) == (111, 111, 3)
    kept = _report("duplicate_rows.csv")
    assert (kept.rows_kept, kept.duplicate_rows, kept.rows_excluded) == (111, 3, {})
    dropped = _report("duplicate_rows.csv", duplicates="drop")
    assert (dropped.rows_kept, dropped.duplicate_rows, dropped.rows_excluded) == (108, 0, {"duplicate_row": 3})
    refunds = _report("negative_amounts.csv", negative_amounts="exclude")
    assert (refunds.rows_kept, refunds.rows_excluded) == (108, {"negative_amount": 2})
    zones = _report("timezone_mixed.csv")
    assert (zones.utc_converted_rows, zones.utc_day_changed_rows, zones.rows_kept) == (3, 2, 111)
    assert "3 timestamps converted to UTC (2 moved to another day)" in zones.describe()
    latin = _report("latin1.csv", encoding="latin-1")
    assert latin.customers == 41


def test_timezones_become_utc_days() -> None:
    con = io.connect()
    from clvmodel.config import DataConfig

    io.load_transactions(con, DataConfig(source=str(BAD / "timezone_mixed.csv")))
    days = con.execute(
        "SELECT customer_id, CAST(day AS VARCHAR) FROM transactions WHERE amount IN (10, 11, 12) ORDER BY amount"
    ).fetchall()
    con.close()
    # 23:30+05:00 is 18:30 UTC the same day; 02:00+05:00 is 21:00 UTC the day before;
    # 20:00-08:00 is 04:00 UTC the day after.
    assert days == [("00004", "1997-06-01"), ("00021", "1997-06-01"), ("00050", "1997-06-04")]


def test_transactions_after_the_observation_end_are_counted(tmp_path: Path) -> None:
    config = {
        "name": "late",
        "data": {"source": str(BAD / "after_observation_end.csv")},
        "observation_end": "1998-06-30",
        "models": ["historical", "bgnbd"],  # see expected.yaml: no gamma_gamma
        "intervals": {"draws": 0},
        "tracking": {"enabled": False},
        "output": {"model_dir": str(tmp_path / "model")},
    }
    path = tmp_path / "late.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = train(load_config(path))
    assert result.rfm.transactions_after_observation_end == 3
    assert "99999" not in set(result.rfm.summary["customer_id"])  # first bought after the end: not modelled
