"""Safe artifacts: a model directory is data; loading it runs nothing and reads nothing outside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from clvmodel import modeldir
from clvmodel.artifact import load
from clvmodel.config import load_config
from clvmodel.errors import ClvError


@pytest.fixture()
def model_copy(trained_cdnow, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    return target


def test_a_planted_loader_runs_under_mlflow_and_clvmodel_refuses_or_ignores_it(model_copy, tmp_path):
    """An MLmodel swapped to name a planted module, tested on the path that reads ``loader_module``.

    ``mlflow.pyfunc.load_model`` imports whatever module the MLmodel names (from the directory's
    ``code`` folder), and clvmodel cannot stop MLflow from doing so: the planted code runs. What
    protects the user is that clvmodel never takes that path on a directory it has not verified:
    ``clvmodel serve`` and ``clvmodel train`` (before replacing a folder) refuse a loader that is
    not ``clvmodel.tracking`` (:func:`clvmodel.modeldir.verify`), and ``clvmodel.load`` (``clvmodel
    score``) reads the JSON document only, never ``loader_module``.
    """
    marker = tmp_path / "ran"
    (model_copy / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    spec = yaml.safe_load((model_copy / "MLmodel").read_text())
    spec["flavors"]["python_function"]["loader_module"] = "evil"
    spec["flavors"]["python_function"]["code"] = "."
    (model_copy / "MLmodel").write_text(yaml.safe_dump(spec))
    # MLflow's path, in a child process (the import must not reach this one): the plant runs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", f"import mlflow; mlflow.pyfunc.load_model({str(model_copy)!r})"],
                   cwd=tmp_path, env=env, capture_output=True, timeout=180, check=False)
    assert marker.exists(), "mlflow did not import the planted loader: this test no longer shows the threat"
    marker.unlink()
    # clvmodel serve's gate refuses the directory, naming the loader.
    with pytest.raises(ClvError, match=r"MLmodel names loader_module 'evil', not 'clvmodel.tracking'; loading it "
                                       r"would run that code, refusing it$"):
        modeldir.verify(model_copy)
    # clvmodel.load reads the JSON and imports nothing the directory names.
    assert load(str(model_copy)).primary is not None
    assert not marker.exists()


def test_data_path_outside_the_model_directory_is_refused(model_copy, tmp_path):
    outside = tmp_path / "elsewhere.json"
    shutil.copy(model_copy / "data" / "clvmodel.json", outside)
    spec = yaml.safe_load((model_copy / "MLmodel").read_text())
    spec["flavors"]["python_function"]["data"] = "../elsewhere.json"
    (model_copy / "MLmodel").write_text(yaml.safe_dump(spec))
    # The rule of clvmodel serve (clvmodel.mlmodel.data_path), in its words.
    with pytest.raises(ClvError, match="MLmodel's data path '../elsewhere.json' is not inside the model directory; refusing it"):
        load(str(model_copy))


def test_document_holds_no_customer_rows(model_copy):
    """Parameters, settings and versions only: the model keeps no training data."""
    document = json.loads((model_copy / "data" / "clvmodel.json").read_text())
    text = json.dumps(document)
    # CDNOW's first customer id, as the text value an id is (a number's digits may contain 00004).
    assert '"00004"' not in text and "'00004'" not in text
    assert set(document) >= {"format", "format_version", "models", "checksum", "versions", "config"}


def test_config_yaml_is_read_safely(tmp_path):
    """A YAML tag that would run code under yaml.load is refused by safe loading."""
    marker = tmp_path / "ran"
    config = tmp_path / "c.yaml"
    config.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ClvError, match="not valid YAML"):
        load_config(config)
    assert not marker.exists()


def test_a_hostile_mlmodel_is_refused_in_one_line(model_copy):
    """score reads MLmodel as serve does: bounded, no aliases, one rule for the data path."""
    (model_copy / "MLmodel").write_text("[" * 50_000)
    with pytest.raises(ClvError, match=r"MLmodel line 1: nested more than 20 levels deep"):
        load(str(model_copy))
    (model_copy / "MLmodel").write_text("a: &a [x, x]\nflavors: {python_function: {data: *a}}\n")
    with pytest.raises(ClvError, match=r"MLmodel line 2: YAML alias \*a is not allowed"):
        load(str(model_copy))


def test_echoed_values_use_the_one_excerpt():
    from clvmodel import artifact, document, serve
    from clvmodel.config import cut, excerpt

    huge = "x" * 1_000_000
    assert artifact._short(huge) == excerpt(huge, 39)
    assert document._excerpt(huge) == excerpt(huge, 39)
    assert serve._one_line(huge) == cut(huge, 500)


def test_artifact_load_reads_local_models_only(tmp_path) -> None:
    # URIs are fetched by clvmodel.load_model through tracking (the one mlflow module), so this low
    # module never imports the modules above it.
    with pytest.raises(ClvError, match=r"^runs:/abc/model is an MLflow URI; load it with clvmodel.load_model"):
        load("runs:/abc/model")
