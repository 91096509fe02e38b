"""mmcv's compiled CUDA ops (what Mask R-CNN needs) agree with its CPU ops."""
import pytest
import torch

from gpu_checks import needs_cuda, require_mmcv_cuda_ops

pytestmark = needs_cuda


def random_boxes(num: int, size: float = 64., seed: int = 0) -> torch.Tensor:
    """``[num, 4]`` boxes ``(x1, y1, x2, y2)`` inside a ``size`` square."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * size * 0.8
    wh = torch.rand(num, 2, generator=gen) * size * 0.3 + 2
    return torch.cat([xy, xy + wh], 1)


def test_nms_cuda_equals_cpu():
    from mmcv.ops import nms
    require_mmcv_cuda_ops()
    boxes = random_boxes(300)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(1))
    dets_cpu, keep_cpu = nms(boxes, scores, iou_threshold=0.5)
    dets_gpu, keep_gpu = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)
    assert keep_gpu.is_cuda
    assert 0 < len(keep_cpu) < 300  # some boxes suppressed, some kept
    assert torch.equal(keep_gpu.cpu(), keep_cpu)
    torch.testing.assert_close(dets_gpu.cpu(), dets_cpu)


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_cuda_equals_cpu(aligned):
    from mmcv.ops import roi_align
    require_mmcv_cuda_ops()
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 32, 32, generator=gen)
    batch = torch.randint(0, 2, (50, 1), generator=gen).float()
    rois = torch.cat([batch, random_boxes(50, size=32.)], 1)
    outs, grads = [], []
    for device in ('cpu', 'cuda'):
        x = feats.to(device).requires_grad_(True)
        out = roi_align(x, rois.to(device), (7, 7), 1.0, 2, 'avg', aligned)
        out.backward(torch.ones_like(out))
        outs.append(out.detach().cpu())
        grads.append(x.grad.cpu())
    assert outs[0].abs().sum() > 0
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-4)
