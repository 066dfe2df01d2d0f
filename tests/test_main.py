"""``python -m clvmodel`` and ``python -m clvmodel.cli`` run the console script (a real interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["clvmodel", "clvmodel.cli"])
def test_module_runs_the_console_script(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The commands of the console script, not an empty run of an import.
    assert "train" in done.stdout and "score" in done.stdout and "budget" in done.stdout


def test_module_reports_a_user_mistake_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "clvmodel", "train", "no-such-config.yaml", "--no-tracking"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "no-such-config.yaml" in done.stderr
