"""Token-pruned inference on CUDA equals CPU.

The demo detector and segmentor (pruned SDT-V3, active network) run in
float64 on both devices, so rounding at the spike thresholds cannot differ;
the features, head outputs and kept-token maps must agree.
"""
import copy

import pytest
import torch

from active_network import activate, assert_active
from gpu_checks import needs_cuda
from mmtpspike.analysis.model_io import build_model

pytestmark = needs_cuda


def det_outputs(model, x):
    """Backbone + SpikeFPN features and the RPN head outputs."""
    feats = model.extract_feat(x)
    cls_scores, bbox_preds = model.rpn_head(feats)
    return [*feats, *cls_scores, *bbox_preds]


def seg_outputs(model, x):
    """Segmentation logits of the whole Semantic FPN."""
    return [model._forward(x)]


def run_on(model, outputs, x, device):
    model = copy.deepcopy(model).to(device)
    with torch.no_grad():
        outs = [o.cpu() for o in outputs(model, x.to(device))]
    kept = [r.kept.cpu() for r in model.backbone.token_records]
    ratios = [r.realised_keep_ratio for r in model.backbone.token_records]
    return outs, kept, ratios


@pytest.mark.parametrize('config, outputs, whole_model', [
    ('configs/det/sdtv3_tp_coco_demo.py', det_outputs, False),
    ('configs/seg/sdtv3_tp_ade20k_demo.py', seg_outputs, True),
], ids=['mask_rcnn', 'semantic_fpn'])
def test_pruned_inference_cuda_equals_cpu(config, outputs, whole_model):
    torch.manual_seed(0)
    model, _ = build_model(config)
    x = torch.randn(2, 3, 128, 160)
    activate(model if whole_model else model.backbone, x)
    assert_active(model.backbone, x)
    model, x = model.double(), x.double()
    cpu, cuda = run_on(model, outputs, x, 'cpu'), run_on(
        model, outputs, x, 'cuda')
    assert min(cpu[2]) < 1.0  # tokens were pruned
    assert cpu[2] == cuda[2]
    for kept_cpu, kept_cuda in zip(cpu[1], cuda[1]):
        assert torch.equal(kept_cpu, kept_cuda)
    for out_cpu, out_cuda in zip(cpu[0], cuda[0]):
        torch.testing.assert_close(out_cuda, out_cpu, rtol=1e-7, atol=1e-7)
