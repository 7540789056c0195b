"""The package type-checks (mypy) and lints clean (ruff), settings in pyproject.toml: a cheap guard for later changes."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_mypy_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "mypy", "kfgen"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "kfgen", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
