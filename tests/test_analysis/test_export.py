"""ONNX export and torch.compile of a pruned SDT-V3 against eager mode.

The network is made active first (:mod:`active_network`): with fresh BN
statistics the transformer stages are silent and any export would "match".
"""
import os

import pytest
import torch

from active_network import activate, assert_active
from mmtpspike.analysis.export import (ExportError, compile_model,
                                       export_onnx, max_abs_diff, onnx_runner,
                                       onnx_session)
from mmtpspike.models import SDTV3
from mmtpspike.models.pruning.selection import select_tokens
from tool_runner import call_main

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

TOLERANCE = 1e-4
SHAPE = (2, 3, 64, 96)


def pruned_sdtv3(keep: float = 0.5) -> SDTV3:
    torch.manual_seed(0)
    return SDTV3(arch='t', pruning=dict(keep_ratios=keep), init_cfg=None)


@pytest.fixture(scope='module')
def image():
    return torch.randn(*SHAPE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope='module')
def active_model(image):
    model = activate(pruned_sdtv3(), image)
    assert_active(model, image)
    return model


@pytest.fixture(scope='module')
def exported(active_model, image, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'sdtv3_t.onnx')
    export_onnx(active_model, (image, ), path)
    return path


def eager(model, image):
    with torch.no_grad():
        return model(image)


def test_onnx_graph_uses_topk_gather_scatter(exported):
    ops = {node.op_type for node in onnx.load(exported).graph.node}
    assert {'TopK', 'GatherElements', 'ScatterElements'} <= ops


def test_onnx_equals_eager_on_active_network(active_model, exported, image):
    reference = eager(active_model, image)
    run = onnx_runner(onnx_session(exported, threads=1))
    assert max_abs_diff(run(image), reference) < TOLERANCE
    other = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(2))
    assert max_abs_diff(run(other), eager(active_model, other)) < TOLERANCE


def test_onnx_check_catches_a_different_keep_ratio(active_model, exported,
                                                   image):
    mutated = pruned_sdtv3(keep=0.75)
    mutated.load_state_dict(active_model.state_dict())
    mutated.eval()
    run = onnx_runner(onnx_session(exported, threads=1))
    assert max_abs_diff(run(image), eager(mutated, image)) > 1e-2


@pytest.mark.parametrize('conv_tile', [None, 4])
def test_onnx_of_every_speed_option_equals_eager(image, tmp_path, conv_tile):
    """skip_mixer and conv-stage stopping (gathered / scattered 3x3 convs,
    repeated scatter targets added by ScatterElements; or haloed tiles
    gathered and written by flat row indices) export too."""
    torch.manual_seed(0)
    model = activate(SDTV3(arch='t', init_cfg=None, pruning=dict(
        keep_ratios=0.5, skip_mixer=True, conv_keep_ratios=0.5,
        conv_tile=conv_tile)), image)
    model.fuse()
    image = image.contiguous(memory_format=torch.channels_last)
    path = str(tmp_path / 'fast.onnx')
    export_onnx(model, (image, ), path)
    run = onnx_runner(onnx_session(path, threads=1))
    assert max_abs_diff(run(image), eager(model, image)) < TOLERANCE
    # the selection is computed in the graph, not frozen from the trace
    other = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(2))
    other = other.contiguous(memory_format=torch.channels_last)
    assert max_abs_diff(run(other), eager(model, other)) < TOLERANCE


class SelectTokens(torch.nn.Module):
    """``select_tokens`` at a fixed count, as the pruner runs it."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        counts = scores.new_full((scores.shape[0], ), self.count,
                                 dtype=torch.long)
        candidates = torch.ones_like(scores, dtype=torch.bool)
        return select_tokens(scores, counts, candidates)[0]


def test_onnx_selection_breaks_ties_by_lowest_index(tmp_path):
    # three score levels over 40 tokens: every row ties at the boundary
    scores = torch.randint(0, 3, (6, 40),
                           generator=torch.Generator().manual_seed(0)).float()
    scores[0] = 0.  # all tokens tie: the first 15 are kept
    module = SelectTokens(count=15)
    path = str(tmp_path / 'select.onnx')
    export_onnx(module, (scores, ), path)
    exported = onnx_runner(onnx_session(path, threads=1))(scores)[0]
    expected = torch.stack([
        torch.tensor(sorted(sorted(range(40), key=lambda i: -row[i])[:15]))
        for row in scores.tolist()
    ])
    assert torch.equal(module(scores), expected)
    assert torch.equal(exported, expected)


def test_export_refuses_padding_and_dynamic_retention(tmp_path, image):
    model = pruned_sdtv3().eval()
    model.set_img_shapes([(60, 90), (64, 96)])
    with pytest.raises(ExportError, match='set_img_shapes'):
        export_onnx(model, (image, ), str(tmp_path / 'padded.onnx'))
    dynamic = SDTV3(arch='t', init_cfg=None,
                    pruning=dict(dynamic=dict(mass=0.9))).eval()
    with pytest.raises(ExportError, match='pruning.dynamic'):
        export_onnx(dynamic, (image, ), str(tmp_path / 'dynamic.onnx'))


@pytest.mark.skipif(
    os.environ.get('MMTPSPIKE_SLOW_TESTS') != '1',
    reason='torch.compile of the pruned backbone takes minutes on 2 CPU '
    'cores; set MMTPSPIKE_SLOW_TESTS=1 to run it')
def test_torch_compile_equals_eager(active_model, image):
    compiled = compile_model(active_model)
    with torch.no_grad():
        outputs = compiled(image)
    assert max_abs_diff(outputs, eager(active_model, image)) < TOLERANCE


def test_export_tool_refuses_to_overwrite(tmp_path):
    target = tmp_path / 'existing.onnx'
    target.write_text('keep me')
    result = call_main('tools/analysis/export_backbone.py', 't', '--onnx',
                       target)
    assert result.returncode != 0
    assert 'exists; pass --force' in result.stderr
    assert target.read_text() == 'keep me'


@pytest.mark.slow  # two ONNX exports through the tool
def test_export_tool_compares_pruned_and_dense_in_each_engine(tmp_path):
    """--dense-baseline: the same weights unpruned go through the same
    engines; one row per engine with both times and the speed-up."""
    target = tmp_path / 'pruned.onnx'
    result = call_main('tools/analysis/export_backbone.py', 't', '--onnx',
                       target, '--dense-baseline', '--fuse', '--shape', '64',
                       '96', '--repeats', '1', '--warmup', '0',
                       '--tolerance', '1e-3')
    assert result.returncode == 0, result.stderr
    assert target.is_file() and (tmp_path / 'pruned.dense.onnx').is_file()
    rows = {line.split('|')[1].strip(): line.split('|')[2:-1]
            for line in result.stdout.splitlines()
            if line.startswith('| eager') or line.startswith('| onnx')}
    assert sorted(rows) == ['eager', 'onnxruntime']
    dense, pruned, speed_up = (cell.strip()
                               for cell in rows['onnxruntime'][:3])
    assert float(dense) > 0 and float(pruned) > 0
    assert float(speed_up.rstrip('x')) == pytest.approx(
        float(dense) / float(pruned), abs=0.01)
    assert 'fuse()d' in result.stdout
