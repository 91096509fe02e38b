"""tools/build/cuda_build_env.py: when mmcv gets CUDA ops, with which nvcc."""
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'cuda_build_env', os.path.join(REPO, 'tools', 'build',
                                   'cuda_build_env.py'))
cbe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cbe)


@pytest.mark.parametrize('request_, torch_cuda, devices, arch_list, expected', [
    ('0', '12.1', ['9.0'], None, (False, None)),
    ('auto', None, [], None, (False, None)),
    ('auto', '13.0', [], None, (False, None)),  # a toolkit alone: CPU
    ('auto', '12.1', ['8.6', '8.0', '8.6'], None, (True, '8.0 8.6')),
    ('auto', '12.1', ['8.6'], '9.0', (True, '9.0')),
    ('1', '12.1', [], '9.0', (True, '9.0')),
])
def test_decide(request_, torch_cuda, devices, arch_list, expected):
    use_cuda, archs, reason = cbe.decide(request_, torch_cuda, devices,
                                         arch_list)
    assert (use_cuda, archs) == expected
    assert reason


def test_decide_explains_how_to_force_cuda_without_a_device():
    _, _, reason = cbe.decide('auto', '13.0', [], None)
    assert 'MMTPSPIKE_CUDA=1' in reason and 'TORCH_CUDA_ARCH_LIST' in reason


def test_decide_errors():
    with pytest.raises(cbe.BuildEnvError, match='CPU-only build'):
        cbe.decide('1', None, [], '9.0')
    with pytest.raises(cbe.BuildEnvError, match='TORCH_CUDA_ARCH_LIST=9.0'):
        cbe.decide('1', '12.1', [], None)


def test_cuda_request():
    assert cbe.cuda_request({}) == 'auto'
    assert cbe.cuda_request({'FORCE_CUDA': '1'}) == '1'
    assert cbe.cuda_request({'FORCE_CUDA': '1', 'MMTPSPIKE_CUDA': '0'}) == '0'
    with pytest.raises(cbe.BuildEnvError, match="MMTPSPIKE_CUDA='yes'"):
        cbe.cuda_request({'MMTPSPIKE_CUDA': 'yes'})


def test_pypi_toolkit_matches_torch_cuda():
    assert cbe.pypi_toolkit('13.0') == [
        'nvidia-cuda-nvcc==13.0.*', 'nvidia-cuda-cccl==13.0.*',
        'nvidia-cuda-crt==13.0.*', 'nvidia-nvvm==13.0.*'
    ]


@pytest.mark.parametrize('torch_cuda', ['12.1', '11.8'])
def test_pypi_has_no_nvcc_before_cuda_13(torch_cuda):
    with pytest.raises(cbe.BuildEnvError) as err:
        cbe.pypi_toolkit(torch_cuda)
    assert f'CUDA {torch_cuda} toolkit' in str(err.value)
    assert 'CUDA_HOME' in str(err.value)


def fake_toolkit(root, version: str, bin_dir='bin', include_dir='include'):
    """A directory with an ``nvcc`` that reports ``version``."""
    nvcc = root / bin_dir / 'nvcc'
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release '
                    f'{version}, V{version}.1"\n')
    nvcc.chmod(0o755)
    (root / include_dir).mkdir(parents=True, exist_ok=True)
    (root / include_dir / 'cuda_runtime.h').write_text('')
    return root


def test_find_toolkit_sorts_toolkits_by_version(tmp_path):
    other = fake_toolkit(tmp_path / 'cuda-13.0', '13.0')
    match = fake_toolkit(tmp_path / 'cuda-12.1', '12.1')
    newer = fake_toolkit(tmp_path / 'cuda-12.4', '12.4')
    no_headers = tmp_path / 'bare'
    fake_toolkit(no_headers, '12.1')
    os.remove(no_headers / 'include' / 'cuda_runtime.h')
    exact, same_major, notes = cbe.find_toolkit(
        '12.1', [other, no_headers, newer, match])
    assert (exact, same_major) == (match, newer)
    assert notes == [f'{other} has CUDA 13.0, torch needs 12.1: not used']
    assert cbe.find_toolkit('11.8', [other, match])[:2] == (None, None)


def test_choose_nvcc_prefers_exact_then_pypi_then_same_major(tmp_path):
    exact_13 = fake_toolkit(tmp_path / 'cuda-13.0', '13.0')
    newer_13 = fake_toolkit(tmp_path / 'cuda-13.1', '13.1')
    newer_12 = fake_toolkit(tmp_path / 'cuda-12.4', '12.4')
    assert cbe.choose_nvcc('13.0', [newer_13, exact_13])[:2] == (exact_13, [])
    toolkit, packages, _ = cbe.choose_nvcc('13.0', [newer_13])
    assert toolkit is None and packages == cbe.pypi_toolkit('13.0')
    toolkit, packages, notes = cbe.choose_nvcc('12.1', [newer_12, newer_13])
    assert (toolkit, packages) == (newer_12, [])
    assert any('12.4' in note and 'same major' in note for note in notes)
    with pytest.raises(cbe.BuildEnvError, match='PyPI has no nvcc') as err:
        cbe.choose_nvcc('12.1', [newer_13])
    assert f'{newer_13} has CUDA 13.1, torch needs 12.1' in str(err.value)


def test_assemble_cuda_home_from_nvidia_packages(tmp_path):
    nvidia = tmp_path / 'nvidia'
    fake_toolkit(nvidia / 'cuda_nvcc', '12.1', include_dir='include/crt')
    runtime = nvidia / 'cuda_runtime'
    (runtime / 'include').mkdir(parents=True)
    (runtime / 'include' / 'cuda_runtime.h').write_text('')
    (runtime / 'lib').mkdir()
    (runtime / 'lib' / 'libcudart.so.12').write_text('')
    (nvidia / 'cublas' / 'include').mkdir(parents=True)
    (nvidia / 'cublas' / 'include' / 'cublas_v2.h').write_text('')
    home = tmp_path / 'cuda-home'
    nvcc = cbe.assemble(home, None, nvidia)
    assert nvcc.resolve() == (nvidia / 'cuda_nvcc' / 'bin' / 'nvcc')
    assert (home / 'include' / 'cublas_v2.h').is_file()
    assert (home / 'lib64' / 'libcudart.so').resolve() == \
        runtime / 'lib' / 'libcudart.so.12'
    assert cbe.nvcc_version(home) == '12.1'
    (tmp_path / 'no_nvcc' / 'cublas').mkdir(parents=True)
    with pytest.raises(cbe.BuildEnvError, match='no nvcc'):
        cbe.assemble(home, None, tmp_path / 'no_nvcc')
