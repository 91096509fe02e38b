"""The two test tiers (setup.cfg's ``slow`` marker), a plugin that
tests/conftest.py loads: without ``-m``, tests marked ``slow`` are
deselected unless named by node id; any ``-m`` expression decides alone
(``-m slow``: the slow tier, ``-m 'slow or not slow'``: everything)."""
import os

import pytest

# how many slow tests the quick tier left out, for the summary line
SLOW_DESELECTED = pytest.StashKey[int]()


def named_on_command_line(item, config) -> bool:
    """Whether ``item`` (or its module / class / parametrised family) was
    named by node id, e.g. ``tests/x.py::test_y``, on the command line."""
    for arg in config.args:
        path, sep, rest = str(arg).partition('::')
        if not sep:
            continue
        path = os.path.relpath(
            os.path.join(str(config.invocation_params.dir), path),
            str(config.rootpath))
        nodeid = f"{path.replace(os.sep, '/')}::{rest}"
        if item.nodeid == nodeid or item.nodeid.startswith(
                (f'{nodeid}[', f'{nodeid}::')):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    """The quick tier: without ``-m``, tests marked ``slow`` are deselected
    unless named by node id. Any ``-m`` expression decides alone: ``-m slow``
    runs the slow tier, ``-m 'slow or not slow'`` everything."""
    if config.getoption('markexpr'):
        return
    slow = [item for item in items if item.get_closest_marker('slow')
            and not named_on_command_line(item, config)]
    if not slow:
        return
    config.hook.pytest_deselected(items=slow)
    deselected = set(slow)
    items[:] = [item for item in items if item not in deselected]
    config.stash[SLOW_DESELECTED] = len(slow)


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(SLOW_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f'{count} slow test(s) deselected (end-to-end runs); run them '
            f'with: python -m pytest -m slow tests')
