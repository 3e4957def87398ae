"""The set-up scripts a new user runs first."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bootstrap_finds_uv_in_local_bin_without_reinstalling_it():
    """uv installed by `pip --user` lives in ~/.local/bin, which a fresh login shell may not
    have on PATH: bootstrap must find it there instead of installing it again on every start."""
    local_uv = Path.home() / ".local/bin/uv"
    if not local_uv.exists():
        if os.environ.get("CI") == "true" and shutil.which("uv") is None:
            pytest.fail("uv is neither in ~/.local/bin nor on PATH")
        pytest.skip("uv is not installed in ~/.local/bin on this machine")
    env = {"HOME": str(Path.home()), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", "scripts/bootstrap", "--extra", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "installing uv" not in result.stdout
