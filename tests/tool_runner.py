"""Run a repository tool as a user would: in a subprocess (``run_tool``),
or its ``main(argv)`` in this process (``call_main``, for argument and
set-up errors, which end long before the seconds a subprocess spends
importing torch and the OpenMMLab packages)."""
import contextlib
import functools
import importlib.util
import io
import os
import subprocess
import sys
from typing import NamedTuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args, timeout: int = 900) -> str:
    """Run ``python *args`` from the repo root; assert success, return the
    combined output."""
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


@functools.lru_cache(maxsize=None)
def load_tool(path: str):
    """The module of a tool script (``tools/...py``, relative to the repo
    root), imported from its file without running its ``__main__`` part."""
    full = os.path.join(REPO_ROOT, path)
    name = 'tool_' + os.path.splitext(path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, full)
    assert spec is not None, f'cannot import {full}'
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, 'main', None)), f'{path} has no main()'
    return module


class ToolResult(NamedTuple):
    """What a user sees of a tool run: exit status and the two streams."""
    returncode: int
    stdout: str
    stderr: str


def exit_status(code, stderr) -> int:
    """The process exit status of ``sys.exit(code)``, which prints a
    non-integer code (a message) to stderr as the interpreter does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)
    return 1


def call_main(path: str, *argv) -> ToolResult:
    """Run ``main(argv)`` of the tool at ``path`` in this process, with
    ``sys.argv`` as on its command line, from the repo root, without
    ``MMTPSPIKE_DEBUG``; return its exit status and output. Environment
    variables the tool sets (e.g. ``LOCAL_RANK``) are undone afterwards."""
    argv = [str(arg) for arg in argv]
    main = load_tool(path).main
    stdout, stderr = io.StringIO(), io.StringIO()
    environ, saved_argv, cwd = dict(os.environ), sys.argv, os.getcwd()
    os.environ.pop('MMTPSPIKE_DEBUG', None)
    sys.argv = [path, *argv]
    os.chdir(REPO_ROOT)
    try:
        with contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr):
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
            code = exit_status(code, stderr)
    finally:
        os.chdir(cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(environ)
    return ToolResult(code, stdout.getvalue(), stderr.getvalue())
