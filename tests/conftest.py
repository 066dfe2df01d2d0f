"""Shared fixtures."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


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
