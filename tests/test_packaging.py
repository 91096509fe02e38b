"""Package metadata against the two tested stacks (requirements/).

``setup.cfg`` declares version ranges so that mmtpspike installs into an
existing OpenMMLab environment; the exact pins of the stacks the suite runs
on live in ``requirements/runtime.txt`` (default) and
``requirements/classic.txt``. Every range must admit both stacks, or it
claims support that is not tested (or refuses a tested stack).
"""
import configparser
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tool_runner import REPO_ROOT

STACKS = {
    'default': ('requirements/runtime.txt', '3.11'),
    'classic': ('requirements/classic.txt', '3.10'),
}


def setup_options():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO_ROOT, 'setup.cfg'))
    return parser


def requirement_lines(text):
    return [line.split('#')[0].strip() for line in text.splitlines()
            if line.split('#')[0].strip()]


def mmcv_pin():
    """mmcv is built from source by tools/setup.sh, not pinned in
    requirements/: its version is the script's ``MMCV_VERSION``."""
    with open(os.path.join(REPO_ROOT, 'tools', 'setup.sh')) as file:
        (version, ) = re.findall(r'^MMCV_VERSION="([^"]+)"$', file.read(),
                                 re.MULTILINE)
    return version


def pins(path):
    """``{name: version}`` of the ``name==version`` lines of a file, plus
    mmcv."""
    with open(os.path.join(REPO_ROOT, path)) as file:
        lines = requirement_lines(file.read())
    result = {}
    for line in lines:
        requirement = Requirement(line)
        (spec, ) = requirement.specifier
        assert spec.operator == '==', line
        result[requirement.name.lower()] = spec.version
    result['mmcv'] = mmcv_pin()
    return result


@pytest.mark.parametrize('stack', sorted(STACKS))
def test_install_requires_admit_the_tested_stack(stack):
    path, python = STACKS[stack]
    pinned = pins(path)
    options = setup_options()['options']
    assert SpecifierSet(options['python_requires']).contains(python)
    for line in requirement_lines(options['install_requires']):
        requirement = Requirement(line)
        name = requirement.name.lower()
        assert name in pinned, f'{name} is required but not pinned in {path}'
        assert requirement.specifier.contains(pinned[name]), \
            f'{stack} pins {name}=={pinned[name]} outside {line!r}'


def test_install_requires_do_not_pin():
    """Ranges, so that an existing environment keeps its own builds."""
    options = setup_options()['options']
    for line in requirement_lines(options['install_requires']):
        operators = {spec.operator for spec in Requirement(line).specifier}
        assert '==' not in operators, line


def test_spikingjelly_extra_never_replaces_torch():
    """The extra is the generation whose own requirements leave torch
    alone (spikingjelly 2.x requires torchaudio and torch >= 2.6); the
    classic stack runs on exactly that version."""
    extras = setup_options()['options.extras_require']
    (line, ) = requirement_lines(extras['spikingjelly'])
    requirement = Requirement(line)
    assert requirement.name == 'spikingjelly'
    assert requirement.specifier.contains(
        pins(STACKS['classic'][0])['spikingjelly'])
    assert not requirement.specifier.contains('2.0.0')
    install_requires = setup_options()['options']['install_requires']
    assert 'spikingjelly' not in install_requires


def runs(python):
    return subprocess.run([python, '--version'],
                          capture_output=True).returncode == 0


def oldest_python():
    """The interpreter of python_requires' lower bound, if installed (on
    PATH or under pyenv, whose shims may name versions that are not
    active)."""
    floor = setup_options()['options']['python_requires'].strip()
    assert floor.startswith('>='), floor
    version = floor[2:]
    pyenv = os.path.expanduser('~/.pyenv/versions')
    candidates = [shutil.which(f'python{version}')] + sorted(glob.glob(
        os.path.join(pyenv, f'{version}.*', 'bin', f'python{version}')))
    found = [python for python in candidates if python and runs(python)]
    return version, found[0] if found else None


def test_sources_compile_on_the_oldest_declared_python(tmp_path):
    version, python = oldest_python()
    if python is None:
        pytest.skip(f'no python{version} on this machine')
    result = subprocess.run(
        [python, '-c', 'import compileall, sys; sys.exit(not all('
         'compileall.compile_dir(d, quiet=1) for d in sys.argv[1:]))',
         'mmtpspike', 'tools'],
        cwd=REPO_ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # pip resolves the whole environment
def test_readme_install_command_replaces_nothing(tmp_path):
    """The README's one command for an existing environment, resolved by
    pip (dry run, offline) in the environment running this test: it
    installs mmtpspike and nothing else. With spikingjelly 2.x installed
    (the default stack) the docs drop the ``[spikingjelly]`` extra."""
    installed = metadata.version('spikingjelly')
    target = REPO_ROOT if installed.startswith('2.') else \
        REPO_ROOT + '[spikingjelly]'
    report = tmp_path / 'report.json'
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
         '--no-build-isolation', '--quiet', '--report', str(report), '-e',
         target],
        cwd=str(tmp_path), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(report) as file:
        planned = [item['metadata']['name'].lower()
                   for item in json.load(file)['install']]
    assert planned == ['mmtpspike'], planned
