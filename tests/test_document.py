"""The model document's schema and bounded reading (clvmodel.document), and the SQL sites it guards.

Each test here fails on the code before issue 12: the document was used before it was checked,
``json.loads`` met a deep document with RecursionError, and values went into SQL as text.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clvmodel import batch, document, io
from clvmodel.artifact import TrainedModel, load
from clvmodel.config import load_config
from clvmodel.errors import ClvError
from clvmodel.integrity import document_checksum
from clvmodel.models import BetaGeoModel, GammaGammaModel, HistoricalModel, ShiftedBetaGeometric
from clvmodel.segments import SEGMENTS  # noqa: F401 - the names the thresholds label

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
SETTINGS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}
BOUNDARIES = {"predicted_clv": {"vip": 265.3, "high": 24.3, "medium": 8.4},
              "expected_purchases": {"vip": 6.8, "high": 0.76, "medium": 0.24}}
INJECTION = ",') LIMIT 0; COPY (SELECT 1 AS x) TO 'PWNED.csv'; SELECT * FROM read_csv('tx.csv"


def _model() -> TrainedModel:
    """A BTYD model as train saves it (CDNOW's config), rebuilt from parameters: no fit needed."""
    config = load_config(CONFIG, ["tracking.enabled=false"]).model_dump(mode="json")
    return TrainedModel(
        name="cdnow",
        time_unit="week",
        models={
            "historical": HistoricalModel.from_dict({"params": {"retention_periods": 54.6, "repeat_rate": 0.4,
                                                                "mean_age": 32.7, "mean_order_value": 35.1}}),
            "bgnbd": BetaGeoModel.from_dict({"params": {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}}),
            "gamma_gamma": GammaGammaModel.from_dict({"params": {"p": 6.25, "q": 3.74, "v": 15.4}}),
        },
        clv=config["clv"],
        segments=config["segments"],
        columns=config["data"]["columns"],
        config=config,
        primary="bgnbd",
        calibration_end=config["calibration_end"],
        observation_end="1998-06-30",
    )


def _tampered(edit: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_model().to_document())
    edit(doc)
    doc["checksum"] = document_checksum(doc)
    return doc


def test_a_saved_document_validates_and_loads(tmp_path: Path) -> None:
    model = _model()
    path = model.write_json(tmp_path / "clvmodel.json")
    loaded = load(path)
    assert loaded.models["bgnbd"].params_ == model.models["bgnbd"].params_
    assert loaded.clv == model.clv and loaded.segments == model.segments


def test_a_subscription_model_may_count_months() -> None:
    sbg = ShiftedBetaGeometric.from_dict({"model": "sbg", "params": {"alpha": 0.7, "beta": 1.2},
                                          "standard_errors": {"alpha": 0.1, "beta": 0.2}, "log_likelihood": -10.0,
                                          "n": 100})
    model = TrainedModel(name="subs", time_unit="month", models={"sbg": sbg}, clv={"horizon": 39,
                         "discount_rate": 0.0, "margin": 1.0, "fee": 10.0}, segments=dict(SETTINGS), columns={},
                         primary="sbg")
    assert TrainedModel.from_document(model.to_document()).time_unit == "month"


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d["config"]["data"].__setitem__("delimiter", INJECTION), "config.data.delimiter"),
        (lambda d: d["config"]["data"].__setitem__("encoding", "utf-8' x"), "config.data.encoding"),
        (lambda d: d["models"]["bgnbd"]["params"].__setitem__("r", None), "models.bgnbd.params.r"),
        (lambda d: d["models"]["bgnbd"]["params"].__setitem__("r", "0.24"), "models.bgnbd.params.r"),
        (lambda d: d["models"]["bgnbd"]["params"].__setitem__("r", -0.24), "models.bgnbd"),
        (lambda d: d["models"]["bgnbd"]["params"].pop("r"), "models.bgnbd"),
        (lambda d: d.__setitem__("time_unit", "month"), "'month' differs from the config's 'week'"),
        (lambda d: d["segments"].__setitem__("lost_below", "0.1 THEN 'x' END"), "segments.lost_below"),
        (lambda d: d["segments"].pop("vip_share"), "segments"),
        (lambda d: d["clv"].__setitem__("horizon", 39.5), "clv.horizon"),
        (lambda d: d.__setitem__("calibration_end", "1997-09-30' OR 1=1"), "calibration_end"),
        (lambda d: d["config"].__setitem__("time_unit", "day"), "differs from the config"),
        (lambda d: d["models"]["bgnbd"].__setitem__("type", "gamma_gamma"), "models.bgnbd"),
        (lambda d: d.__setitem__("challenger", {"path": "../elsewhere"}), "challenger.path"),
        (lambda d: d.__setitem__("surprise", 1), "surprise"),
        (lambda d: d.__setitem__("segment_boundaries", {**BOUNDARIES, "predicted_clv": {"vip": 5.0, "high": 9.0, "medium": 1.0}}),
         "segment_boundaries.predicted_clv"),
        (lambda d: d.__setitem__("segment_boundaries", {**BOUNDARIES, "expected_purchases": {"vip": 5.0, "high": 1.0, "medium": 2.0}}),
         "segment_boundaries.expected_purchases"),
        (lambda d: d.__setitem__("segment_boundaries", {**BOUNDARIES, "predicted_clv": {"vip": None, "high": 1.0, "medium": 0.5}}),
         "segment_boundaries.predicted_clv.vip"),
        (lambda d: d.__setitem__("segment_boundaries", {**BOUNDARIES, "predicted_clv": {"vip": "9", "high": 1.0, "medium": 0.5}}),
         "segment_boundaries.predicted_clv.vip"),
        (lambda d: d.__setitem__("segment_boundaries", {**BOUNDARIES, "predicted_clv": {"vip": 9.0, "high": 1.0, "medium": -0.5}}),
         "segment_boundaries.predicted_clv.medium"),
        (lambda d: d.__setitem__("segment_boundaries", {"predicted_clv": None, "expected_purchases": None}), "segment_boundaries"),
        (lambda d: d.__setitem__("segment_boundaries", {"predicted_clv": BOUNDARIES["predicted_clv"]}),
         "segment_boundaries.expected_purchases"),
    ],
)
def test_every_field_is_checked_before_use(edit: Any, where: str) -> None:
    with pytest.raises(ClvError, match="invalid model document") as caught:
        TrainedModel.from_document(_tampered(edit), origin="M")
    message = str(caught.value)
    assert where in message and "\n" not in message and len(message) < 400


def test_boundaries_load_and_a_nan_boundary_is_refused_in_one_line(tmp_path: Path) -> None:
    model = _model()
    model.segment_boundaries = BOUNDARIES
    path = model.write_json(tmp_path / "clvmodel.json")
    assert load(path).segment_boundaries == BOUNDARIES
    # NaN as a file would hold it (a token Python writes): refused by the reader; handed as a dict to
    # from_document: no checksum can cover it (canonical JSON has no NaN); and by the schema itself.
    text = path.read_text().replace("265.3", "NaN")
    (tmp_path / "nan.json").write_text(text)
    refusals = {"NaN is not a JSON number": lambda: load(tmp_path / "nan.json"),
                "checksum mismatch": lambda: TrainedModel.from_document(json.loads(text), origin="M"),
                "not JSON compliant": lambda: document.validate(json.loads(text), "M")}
    for expected, attempt in refusals.items():
        with pytest.raises(ClvError) as caught:
            attempt()
        message = str(caught.value)
        assert expected in message and "\n" not in message and len(message) < 400, message
    with pytest.raises(ValueError, match="finite number"):
        document.TierBoundaries.model_validate({"vip": float("nan"), "high": 1.0, "medium": 0.5})


def test_depth_is_bounded_when_reading_and_when_handed_a_dict(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(ClvError, match="nested deeper than 32 levels"):
        document.read_json(deep, "retrain it")
    shallow_enough_for_python = tmp_path / "hundred.json"
    shallow_enough_for_python.write_text('{"a": ' + "[" * 100 + "]" * 100 + "}", encoding="utf-8")
    with pytest.raises(ClvError, match="nested deeper"):
        document.read_json(shallow_enough_for_python, "retrain it")
    nested: Any = []
    for _ in range(5_000):  # deeper than json.dumps (the checksum) could recurse
        nested = [nested]
    doc = _model().to_document()
    doc["selection"] = {"x": nested}
    with pytest.raises(ClvError, match="nested deeper"):
        TrainedModel.from_document(doc, origin="M")


def test_size_and_non_json_numbers_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _model().write_json(tmp_path / "clvmodel.json")
    monkeypatch.setattr(document, "MAX_BYTES", 100)
    with pytest.raises(ClvError, match="more than a model document's 100"):
        document.read_json(path, "retrain it")
    monkeypatch.undo()
    path.write_text(path.read_text().replace('"r": ', '"r": Infinity, "x": ', 1), encoding="utf-8")
    with pytest.raises(ClvError, match="Infinity is not a JSON number"):
        document.read_json(path, "retrain it")


# --- the SQL sites, without the schema in front of them ----------------------------------------


def test_columns_of_passes_the_documents_delimiter_as_a_parameter(tmp_path: Path, monkeypatch) -> None:
    """Even a document that skipped validation cannot write a file through inputs.columns_of."""
    from clvmodel.inputs import columns_of

    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,date,amount\n1,2020-01-01,5\n", encoding="utf-8")
    model = _model()
    model.config = {**model.config, "data": {**model.config["data"], "delimiter": INJECTION}}
    from pydantic import ValidationError

    # DuckDB refuses the delimiter (it is a parameter, not SQL); the error path then re-validates
    # the data config, whose delimiter rule refuses it too. Either way nothing else runs.
    with pytest.raises((ClvError, ValidationError)):
        columns_of(csv, model)
    assert not (tmp_path / "PWNED.csv").exists()


def test_memory_limit_is_a_parameter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(duckdb.Error):
        io.connect(memory_limit="1GB'; COPY (SELECT 1) TO 'PWNED.csv'; SET memory_limit = '1GB")
    assert not (tmp_path / "PWNED.csv").exists()


def test_segment_thresholds_must_be_numbers() -> None:
    sql = batch.segment_sql("t", SETTINGS, 10)
    assert "p_alive < 0.1 THEN 'lost'" in sql
    with pytest.raises(TypeError):
        batch.segment_sql("t", {**SETTINGS, "lost_below": "0 THEN 'x' END FROM t); COPY (SELECT 1) TO 'P'; --"}, 10)
    with pytest.raises(ClvError, match="not a finite number"):
        batch.segment_sql("t", {**SETTINGS, "vip_share": float("nan")}, 10)


def test_one_bounded_json_reader_for_documents_and_manifests(tmp_path, monkeypatch):
    from clvmodel import integrity, modeldir

    deep = b"[" * 100_000
    with pytest.raises(ClvError, match="nested deeper than 32 levels"):
        document.parse_json(deep, "D", "retrain it")
    with pytest.raises(ClvError, match="clvmodel.manifest.json is not a clvmodel manifest"):
        integrity.check_manifest({"clvmodel.manifest.json": deep}, "M")
    with pytest.raises(ClvError, match="nested deeper than 32 levels"):
        modeldir._document(deep, "M")
    assert not hasattr(modeldir, "_MAX_DOCUMENT")  # one size limit: document.MAX_BYTES
    monkeypatch.setattr(document, "MAX_BYTES", 10)
    with pytest.raises(ClvError, match="more than a model document's 10"):
        modeldir._document(b'{"format": "clvmodel"}', "M")
