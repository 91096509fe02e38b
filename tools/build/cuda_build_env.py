"""Decide whether tools/setup.sh builds mmcv with CUDA ops, and prepare nvcc.

Run with the Python of the environment being set up (it imports torch):

    python tools/build/cuda_build_env.py decide
        Prints ``KEY=VALUE`` lines (shell-quoted) for tools/setup.sh:
        MMCV_CUDA (0/1), CUDA_REASON, TORCH_CUDA (e.g. 12.1), CUDA_ARCHS
        (e.g. "9.0"), CUDA_TOOLKIT (a system toolkit matching torch's CUDA,
        or empty) and CUDA_PIP (the PyPI packages that provide nvcc when the
        system has no matching toolkit).
    python tools/build/cuda_build_env.py assemble OUT_DIR [--toolkit DIR]
        Makes OUT_DIR a CUDA_HOME for torch.utils.cpp_extension: nvcc from
        DIR (or from the nvidia-* packages installed in this environment),
        and the headers of those packages (cuBLAS, cuSPARSE, cuSOLVER, ...,
        the exact versions torch was installed with) next to the toolkit's.

Policy (MMTPSPIKE_CUDA, or FORCE_CUDA as mmcv spells it, when that is unset):

* ``0``: CPU ops only.
* ``auto`` (default): CUDA ops when torch is a CUDA build and sees a CUDA
  device; a toolkit alone (build hosts, CI) does not switch CUDA on, so a
  CPU-only machine always gets the same, fast CPU build.
* ``1``: CUDA ops, also without a visible device (then TORCH_CUDA_ARCH_LIST
  must name the architectures); an error with a CPU-only torch.

nvcc comes from a system toolkit of torch's CUDA ``major.minor``, else from
PyPI (CUDA >= 13 only), else from a system toolkit of the same major version;
toolkits of another major version are reported and left alone.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REQUESTS = ('auto', '0', '1')


class BuildEnvError(RuntimeError):
    """A CUDA build was asked for but cannot be set up."""


def cuda_request(environ: Dict[str, str]) -> str:
    """``auto``, ``0`` or ``1`` from MMTPSPIKE_CUDA (else FORCE_CUDA)."""
    if 'MMTPSPIKE_CUDA' in environ:
        request = environ['MMTPSPIKE_CUDA']
        name = 'MMTPSPIKE_CUDA'
    elif 'FORCE_CUDA' in environ:
        request = environ['FORCE_CUDA']
        name = 'FORCE_CUDA'
    else:
        return 'auto'
    if request not in REQUESTS:
        raise BuildEnvError(f'{name}={request!r}: use one of {REQUESTS}')
    return request


def decide(request: str, torch_cuda: Optional[str], device_archs: List[str],
           arch_list: Optional[str]) -> Tuple[bool, Optional[str], str]:
    """Decide on a CUDA build of mmcv.

    Args:
        request (str): ``auto``, ``0`` or ``1``.
        torch_cuda (str | None): ``torch.version.cuda`` (None: CPU torch).
        device_archs (list[str]): compute capabilities of the visible CUDA
            devices, e.g. ``['9.0']``.
        arch_list (str | None): TORCH_CUDA_ARCH_LIST from the environment.

    Returns:
        tuple: ``(use_cuda, arch_list, reason)``.

    Raises:
        BuildEnvError: if CUDA ops are requested but cannot be built.
    """
    if request == '0':
        return False, None, 'MMTPSPIKE_CUDA=0 asks for CPU ops only'
    if torch_cuda is None:
        if request == '1':
            raise BuildEnvError(
                'CUDA ops were requested (MMTPSPIKE_CUDA=1) but this torch is '
                'a CPU-only build; install a CUDA build of torch first')
        return False, None, 'torch is a CPU-only build'
    if request == 'auto' and not device_archs:
        return False, None, (
            f'torch (CUDA {torch_cuda}) sees no CUDA device; set '
            'MMTPSPIKE_CUDA=1 and TORCH_CUDA_ARCH_LIST to build CUDA ops '
            'anyway')
    archs = arch_list or ' '.join(sorted(set(device_archs)))
    if not archs:
        raise BuildEnvError(
            'no CUDA device is visible, so TORCH_CUDA_ARCH_LIST must name the '
            'GPU architectures to compile for, e.g. TORCH_CUDA_ARCH_LIST=9.0 '
            '(H100) or "8.0 8.6" (A100, RTX 30xx)')
    source = 'TORCH_CUDA_ARCH_LIST' if arch_list else 'the visible devices'
    why = ('MMTPSPIKE_CUDA=1' if request == '1' else
           f'torch sees {len(device_archs)} CUDA device(s)')
    return True, archs, (f'{why}: CUDA {torch_cuda} ops for architectures '
                         f'{archs} (from {source})')


def nvcc_version(toolkit: Path) -> Optional[str]:
    """``major.minor`` of ``toolkit/bin/nvcc``, or None if it is unusable."""
    nvcc = toolkit / 'bin' / 'nvcc'
    if not (nvcc.is_file() and (toolkit / 'include' / 'cuda_runtime.h')
            .is_file()):
        return None
    try:
        out = subprocess.run([str(nvcc), '--version'],
                             capture_output=True,
                             text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def toolkit_candidates(environ: Dict[str, str], torch_cuda: str) -> List[Path]:
    """Where a system CUDA toolkit may be, most specific first."""
    roots = [environ.get('CUDA_HOME'), environ.get('CUDA_PATH'),
             f'/usr/local/cuda-{torch_cuda}', '/usr/local/cuda']
    nvcc = shutil.which('nvcc')
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    seen, found = set(), []
    for root in roots:
        if root and root not in seen:
            seen.add(root)
            found.append(Path(root))
    return found


def find_toolkit(
    torch_cuda: str, candidates: List[Path]
) -> Tuple[Optional[Path], Optional[Path], List[str]]:
    """System toolkits usable for torch's CUDA ``major.minor``.

    Returns:
        tuple: ``(exact, same_major, notes)``: the first toolkit whose nvcc
        is ``torch_cuda``, the first one of the same major version (torch's
        extension builder accepts it with a warning), and why the others
        are not used.
    """
    exact = same_major = None
    notes = []
    for root in candidates:
        version = nvcc_version(root)
        if version is None:
            continue
        if version == torch_cuda:
            exact = exact or root
        elif version.split('.')[0] == torch_cuda.split('.')[0]:
            same_major = same_major or root
        else:
            notes.append(f'{root} has CUDA {version}, torch needs '
                         f'{torch_cuda}: not used')
    return exact, same_major, notes


def choose_nvcc(torch_cuda: str,
                candidates: List[Path]) -> Tuple[Optional[Path], List[str],
                                                 List[str]]:
    """Where nvcc comes from: ``(system toolkit, PyPI packages, notes)``.

    Preference: a system toolkit of torch's exact CUDA version, then the
    PyPI packages of that version (CUDA >= 13), then a system toolkit of the
    same major version (CUDA 12 has no nvcc on PyPI).

    Raises:
        BuildEnvError: if none of them exists.
    """
    exact, same_major, notes = find_toolkit(torch_cuda, candidates)
    if exact:
        return exact, [], notes
    try:
        return None, pypi_toolkit(torch_cuda), notes
    except BuildEnvError as err:
        if same_major is None:
            raise BuildEnvError('; '.join([str(err)] + notes)) from None
    notes.append(f'{same_major} has CUDA {nvcc_version(same_major)}, torch '
                 f'was built with {torch_cuda}: used (same major version, '
                 'which torch\'s extension builder accepts with a warning)')
    return same_major, [], notes


def pypi_toolkit(torch_cuda: str) -> List[str]:
    """PyPI requirements that provide nvcc for CUDA ``major.minor``.

    Only CUDA >= 13 has nvcc on PyPI (``nvidia-cuda-nvcc``); the CUDA 12
    wheels (``nvidia-cuda-nvcc-cu12``, 12.0.76 to 12.9.86) hold ptxas and
    libNVVM for JIT compilers, not nvcc.
    """
    major, minor = torch_cuda.split('.')[:2]
    if int(major) < 13:
        raise BuildEnvError(
            f'torch was built with CUDA {torch_cuda} and no CUDA {major}.x '
            f'toolkit was found (CUDA_HOME, CUDA_PATH, /usr/local/cuda*, '
            f'nvcc on PATH); PyPI has no nvcc for CUDA {major}.x '
            f'(nvidia-cuda-nvcc-cu{major} ships only ptxas). Install a CUDA '
            f'{torch_cuda} toolkit (NVIDIA runfile or apt repository, or '
            f'`conda install -c nvidia cuda-nvcc={torch_cuda}`) and set '
            f'CUDA_HOME to it, or use the default profile (CUDA 13, whose '
            f'nvcc comes from PyPI)')
    names = ['nvidia-cuda-nvcc', 'nvidia-cuda-cccl', 'nvidia-cuda-crt',
             'nvidia-nvvm']  # nvcc's front-end headers and cicc are split off
    return [f'{name}=={major}.{minor}.*' for name in names]


def device_archs() -> List[str]:
    """Compute capabilities of the CUDA devices torch sees."""
    import torch
    if not torch.cuda.is_available():
        return []
    return [
        '{}.{}'.format(*torch.cuda.get_device_capability(i))
        for i in range(torch.cuda.device_count())
    ]


def cmd_decide() -> None:
    import torch
    environ = dict(os.environ)
    use_cuda, archs, reason = decide(
        cuda_request(environ), torch.version.cuda, device_archs(),
        environ.get('TORCH_CUDA_ARCH_LIST') or None)
    values = dict(MMCV_CUDA='1' if use_cuda else '0', CUDA_REASON=reason,
                  TORCH_CUDA=torch.version.cuda or '', CUDA_ARCHS=archs or '',
                  CUDA_TOOLKIT='', CUDA_PIP='')
    if use_cuda:
        toolkit, packages, notes = choose_nvcc(
            torch.version.cuda, toolkit_candidates(environ, torch.version.cuda))
        for note in notes:
            print(f'# {note}', file=sys.stderr)
        values['CUDA_TOOLKIT'] = str(toolkit) if toolkit else ''
        values['CUDA_PIP'] = ' '.join(packages)
    for key, value in values.items():
        print(f'{key}={shlex.quote(value)}')


def _link_tree(src: Path, dst: Path) -> None:
    """Symlink every entry of ``src`` into ``dst`` (first one wins)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if not target.exists() and not target.is_symlink():
            target.symlink_to(entry)


def assemble(out: Path, toolkit: Optional[Path], nvidia: Path) -> Path:
    """Build a CUDA_HOME at ``out``; returns the nvcc it uses.

    Args:
        out (Path): directory to (re)create.
        toolkit (Path | None): a system toolkit; None for the nvidia-*
            packages in ``nvidia`` (``site-packages/nvidia``).
        nvidia (Path): the ``nvidia`` package directory of the environment.
    """
    if out.exists():
        shutil.rmtree(out)
    packages = sorted(p for p in nvidia.iterdir() if p.is_dir())
    if toolkit is None:
        homes = [p for p in packages if (p / 'bin' / 'nvcc').is_file()]
        if not homes:
            raise BuildEnvError(f'no nvcc under {nvidia}; install the '
                                'packages printed by `decide` first')
        toolkit = homes[0]
    out.mkdir(parents=True)
    (out / 'bin').symlink_to(toolkit / 'bin')
    if (toolkit / 'nvvm').is_dir():
        (out / 'nvvm').symlink_to(toolkit / 'nvvm')
    for root in [toolkit] + packages:
        if (root / 'include').is_dir():
            _link_tree(root / 'include', out / 'include')
    lib = out / 'lib64'
    lib.mkdir()
    for root in [toolkit] + packages:
        for sub in ('lib64', 'lib'):
            for so in sorted((root / sub).glob('libcudart.so*')):
                if not (lib / 'libcudart.so').exists():
                    (lib / 'libcudart.so').symlink_to(so)
    if not (lib / 'libcudart.so').exists():
        raise BuildEnvError(f'no libcudart.so in {toolkit} or {nvidia}')
    return out / 'bin' / 'nvcc'


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('decide')
    build = sub.add_parser('assemble')
    build.add_argument('out', type=Path)
    build.add_argument('--toolkit', type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == 'decide':
            cmd_decide()
        else:
            import torch
            nvidia = Path(torch.__file__).parent.parent / 'nvidia'
            nvcc = assemble(args.out, args.toolkit, nvidia)
            print(f'CUDA_HOME={args.out} (nvcc {nvcc.resolve()}, CUDA '
                  f'{nvcc_version(args.out)})')
    except BuildEnvError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
