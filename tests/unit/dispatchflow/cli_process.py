"""Running the real `dispatchflow` command line in a child process."""

from __future__ import annotations

import os
import subprocess
import sys

from dispatchflow.settings import ENV_PREFIX


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `dispatchflow ARGS` with only `env`'s `DISPATCHFLOW_*` variables; capture its output."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        [sys.executable, "-m", "dispatchflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**base, **(env or {})},
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run; fails if it exited 0, traced back or said more."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
