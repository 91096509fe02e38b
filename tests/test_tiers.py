"""The quick / slow tiers of tests/tiers.py on a two-test suite: which
tests each command line runs."""
import pytest

pytest_plugins = 'pytester'

SUITE = """
import pytest


@pytest.mark.slow
def test_end_to_end():
    pass


@pytest.mark.slow
@pytest.mark.parametrize('size', [1, 2])
def test_sizes(size):
    pass


def test_unit():
    pass
"""
SLOW = ['test_end_to_end', 'test_sizes[1]', 'test_sizes[2]']


@pytest.fixture
def suite(pytester):
    pytester.makeini('[pytest]\nmarkers =\n    slow: end-to-end run\n')
    pytester.makeconftest('from tiers import (pytest_collection_modifyitems,'
                          ' pytest_terminal_summary)\n')
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def ran(result) -> list:
    """Names of the tests that passed, from ``-v`` output."""
    return sorted(line.split('::', 1)[1].split(' ')[0]
                  for line in result.outlines
                  if line.startswith('test_suite.py::') and 'PASSED' in line)


@pytest.mark.parametrize('args, expected, deselected', [
    ((), ['test_unit'], 3),
    (('-m', 'slow'), SLOW, 1),
    (('-m', 'slow or not slow'), sorted(SLOW + ['test_unit']), 0),
    (('-m', 'not slow'), ['test_unit'], 3),
    (('test_suite.py::test_end_to_end', ), ['test_end_to_end'], 0),
    (('test_suite.py::test_sizes', ), ['test_sizes[1]', 'test_sizes[2]'], 0),
    (('test_suite.py::test_sizes[2]', 'test_suite.py::test_unit'),
     ['test_sizes[2]', 'test_unit'], 0),
], ids=['default', 'slow', 'both', 'not_slow', 'node_id', 'family',
        'node_ids'])
def test_command_line_selects_its_tier(suite, args, expected, deselected):
    result = suite.runpytest('-v', '-p', 'no:cacheprovider', *args)
    assert ran(result) == expected, result.outlines
    result.assert_outcomes(passed=len(expected), deselected=deselected)


def test_default_run_says_how_to_run_the_slow_tier(suite):
    result = suite.runpytest('-p', 'no:cacheprovider')
    result.stdout.fnmatch_lines([
        '3 slow test(s) deselected (end-to-end runs); run them with: '
        'python -m pytest -m slow tests'
    ])
    result.assert_outcomes(passed=1, deselected=3)
