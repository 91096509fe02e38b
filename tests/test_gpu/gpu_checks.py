"""Shared marks for the CUDA tests (``pytest -m gpu``)."""
import pytest
import torch

#: every test here needs a CUDA device; skipped (with the reason) without one
needs_cuda = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason='no CUDA device visible to torch (CUDA tests run on GPU '
        'machines; see docs/install.md)')
]


def require_mmcv_cuda_ops() -> None:
    """Fail with the fix when mmcv was built without CUDA ops."""
    from mmcv.ops import get_compiling_cuda_version
    built = get_compiling_cuda_version()
    assert built != 'not available', (
        'torch sees a GPU but mmcv was built without CUDA ops: run '
        '`bash tools/setup.sh` on this machine again (it builds CUDA ops '
        'when torch sees a GPU; the wheel cache key includes the CUDA build)')
