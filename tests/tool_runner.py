"""Run a repository tool in a subprocess, as a user would."""
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args, timeout: int = 900) -> str:
    """Run ``python *args`` from the repo root; assert success, return the
    combined output."""
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr
