"""Per-layer firing rates, SOPs and energy (mmtpspike.analysis.energy) and
tools/analysis/energy.py."""
import csv
import json
import math

import cv2
import pytest
import torch
import torch.nn as nn

from mmtpspike.analysis.complexity import MacCounter, scorer_macs
from mmtpspike.analysis.energy import (AC, MAC, EnergyCosts, EnergyMeter,
                                       stage_of)
from mmtpspike.analysis.energy_report import layer_rows, summarize
from mmtpspike.models import SDTV3
from mmtpspike.models.layers.spike_neurons import MultiSpike, unroll_spikes
from tool_runner import call_main, run_tool

TINY = dict(arch='t', depths=(1, 1, 2, 1))
DET_DEMO = 'configs/det/sdtv3_tp_coco_demo.py'


class TwoConvSNN(nn.Module):
    """Encoding 1x1 conv (1 -> 2 channels, weights 1 and 2), a multi-spike
    neuron (D = 4), a 1x1 conv (2 -> 3 channels): on ``[T * B, 1, H, W]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 1, bias=False)
        self.conv1.encodes_input = True
        self.spike = MultiSpike(max_spikes=4)
        self.conv2 = nn.Conv2d(2, 3, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([1., 2.]).view(2, 1, 1, 1))
            self.conv2.weight.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.spike(self.conv1(x)))


def _measure(model, *inputs, **kwargs) -> EnergyMeter:
    meter = EnergyMeter(model, **kwargs)
    with torch.no_grad(), meter:
        for x in inputs:
            model(x)
    return meter


def test_hand_computed_two_conv_example():
    # T = 2 timesteps of one image (timestep-major rows); step 2 is silent.
    # Step 1: channel 0 = x -> counts round(clamp(x, 0, 4)) = 0, 1, 2, 0;
    # channel 1 = 2 x -> 1, 2, 4, 0: 10 spikes over 2 x 2 x 4 = 16 neurons
    # and steps, rate 10 / 16 = 0.625. conv1 (image input, MAC layer):
    # 2 x 4 outputs x 1 input x 2 steps = 16 MACs. conv2 (AC layer): FLOPs
    # per step 3 x 4 outputs x 2 inputs = 24, SOPs = 0.625 x 2 x 24 = 30
    # (= 10 spikes x fan-out 3). E = 4.6 x 16 + 0.9 x 30 = 100.6 pJ.
    step1 = torch.tensor([[0.4, 1.2], [2.0, -1.0]]).view(1, 1, 2, 2)
    image = torch.cat([step1, torch.zeros_like(step1)])
    meter = _measure(TwoConvSNN(), image, torch.zeros_like(image))
    assert meter.num_samples == 2
    costs = EnergyCosts()
    rows = {r['layer']: r for r in layer_rows(meter, 1.0, costs, 2)}
    conv1, conv2 = rows['conv1'], rows['conv2']
    assert (conv1['kind'], conv2['kind']) == (MAC, AC)
    assert meter.layers['conv1'].macs == [16, 16]
    assert meter.layers['conv2'].macs == [48, 48]
    assert meter.layers['conv2'].sops == [30, 0]
    assert meter.layers['conv2'].rates() == [0.625, 0]
    assert math.isnan(conv1['firing_rate_mean'])
    assert conv2['flops'] == 24
    # mean and population std over the two images (0.625 and 0)
    assert conv2['firing_rate_mean'] == pytest.approx(0.3125)
    assert conv2['firing_rate_std'] == pytest.approx(0.3125)
    assert conv2['input_shape'] == '2x2x2x2'
    first = summarize(meter, 1.0, costs)['total']
    assert first['energy_mj']['mean'] == pytest.approx(
        (100.6 + 4.6 * 16) / 2 * 1e-9)
    alone = summarize(_measure(TwoConvSNN(), image), 1.0, costs)['total']
    assert alone['energy_mj']['mean'] == pytest.approx(100.6e-9)
    assert alone['gsops']['mean'] == pytest.approx(30e-9)
    assert alone['firing_rate'] == pytest.approx(0.625)
    # configurable energies: 1 pJ / MAC, 2 pJ / AC -> 16 + 60
    other = summarize(_measure(TwoConvSNN(), image), 1.0,
                      EnergyCosts(e_mac_pj=1., e_ac_pj=2.))['total']
    assert other['energy_mj']['mean'] == pytest.approx(76e-9)


def test_integer_spike_n_counts_as_n_binary_spikes():
    model = TwoConvSNN()
    image = torch.rand(1, 1, 6, 5) * 5 - 0.5
    seen = {}
    model.spike.register_forward_hook(
        lambda mod, args, out: seen.__setitem__('spikes', out.clone()))
    meter = _measure(model, image)
    counts = seen['spikes'] * 4
    assert counts.max() >= 2  # multi-spike values are present
    binary = unroll_spikes(seen['spikes'], 4).sum()
    fan_out = model.conv2.out_channels  # 1x1 conv
    assert meter.layers['conv2'].sops == [pytest.approx(
        float(binary) * fan_out)]
    # a constant count of 3 per neuron: rate 3, three times the MACs
    with torch.no_grad():
        model.conv1.weight.fill_(3.)
    meter = _measure(model, torch.ones(1, 1, 4, 4))
    assert meter.layers['conv2'].rates() == [3.]
    assert meter.layers['conv2'].sops == [3. * meter.layers['conv2'].macs[0]]


def test_event_input_makes_the_encoding_conv_an_ac_layer():
    torch.manual_seed(0)
    model = SDTV3(**TINY, num_timesteps=2).eval()
    events = (torch.rand(1, 2, 3, 64, 64) < 0.2).float()  # [B, T, C, H, W]
    encode = 'stem.downsample.encode_conv'
    on_events = _measure(model, events).layers[encode]
    assert on_events.kind == AC
    assert on_events.rates() == [pytest.approx(float(events.mean()))]
    assert on_events.sops[0] == pytest.approx(
        float(events.mean()) * on_events.macs[0])
    # the same frames as images (real values), and real-valued 5-D frames,
    # cost MACs
    assert _measure(model, events[:, 0] * 0.7).layers[encode].kind == MAC
    frames = torch.randn(1, 2, 3, 64, 64)
    assert _measure(model, frames).layers[encode].kind == MAC
    # an explicit choice overrides the detection
    forced = _measure(model, events, event_input=False).layers[encode]
    assert forced.kind == MAC


def test_pruned_rows_count_kept_tokens_and_the_scorer():
    from active_network import activate, assert_active
    torch.manual_seed(0)
    height, width, keep = 64, 96, 0.5
    image = torch.randn(1, 3, height, width)
    model = activate(SDTV3(**TINY, pruning=dict(keep_ratios=1.0)), image)
    assert_active(model, image)
    dense = _measure(model, image)
    model.set_keep_ratios(keep)
    pruned = _measure(model, image)
    tokens = (height // 16) * (width // 16)
    kept = math.ceil(keep * tokens)
    for stage, channels in (('stages.2', 96), ('stages.3', 128)):
        fc1 = f'{stage}.blocks.0.mlp.fc1_conv'
        assert dense.layers[fc1].macs == [tokens * channels * 4 * channels]
        assert pruned.layers[fc1].macs == [kept * channels * 4 * channels]
        for layer in ('attn.q_conv.0', 'attn.matmul', 'mlp.fc2_conv'):
            name = f'{stage}.blocks.0.{layer}'
            assert 0 < pruned.layers[name].sops[0] < dense.layers[name].sops[0]
    # the scorer runs only when pruning, as a MAC layer, once per block
    assert 'pruner.scorer' not in dense.layers
    scorer = pruned.layers['pruner.scorer']
    assert scorer.kind == MAC
    expected = sum(depth * scorer_macs(model.pruner.scorer,
                                       torch.zeros(1, c, 4, 6), 1)
                   for c, depth in ((96, 2), (128, 1)))
    assert scorer.macs == [expected]
    # unpruned layers do the same work
    for name in ('stem.downsample.encode_conv', 'stages.2.downsample.'
                 'encode_conv', 'stages.2.blocks.0.sep_conv.pwconv1.0'):
        assert pruned.layers[name].sops == pytest.approx(
            dense.layers[name].sops)
    costs = EnergyCosts()
    dense_total = summarize(dense, 1.0, costs)['total']
    pruned_total = summarize(pruned, keep, costs)
    assert pruned_total['total']['gsops']['mean'] < \
        dense_total['gsops']['mean']
    assert pruned_total['total']['energy_mj']['mean'] < \
        dense_total['energy_mj']['mean']
    assert {'stages.2', 'stages.3', 'pruner.scorer'} <= set(
        pruned_total['stages'])
    # the same totals as MacCounter
    with torch.no_grad(), MacCounter(model, 4) as counter:
        model(image)
    assert sum(sum(layer.sops) for layer in pruned.layers.values()) == \
        pytest.approx(counter.sops)


def test_stage_of():
    assert stage_of('backbone.stages.2.blocks.0.attn.q_conv.0') == \
        'backbone.stages.2'
    assert stage_of('backbone.stem.downsample.encode_conv') == \
        'backbone.stem'
    assert stage_of('neck.lateral_convs.1.conv') == 'neck.lateral_convs.1'
    assert stage_of('conv2') == 'conv2'


def test_energy_tool_writes_csv_json_png(tmp_path):
    out = run_tool('tools/analysis/energy.py', DET_DEMO, '--num-images', '2',
                   '--keep', '1.0', '0.5', '--out-dir', str(tmp_path))
    assert 'no checkpoint: BN statistics of the untrained model' in out
    assert '| keep | GMACs |' in out and 'energy (mJ)' in out
    rows = list(csv.DictReader((tmp_path / 'layers.csv').open()))
    keeps = [float(r['keep']) for r in rows]
    assert set(keeps) == {1.0, 0.5}
    dense = {r['layer']: r for r in rows if float(r['keep']) == 1.0}
    encode = dense['backbone.stem.downsample.encode_conv']
    assert encode['kind'] == 'MAC' and encode['firing_rate_mean'] == ''
    assert any(r['kind'] == 'AC' and r['layer'].startswith('neck.')
               for r in dense.values())
    report = json.loads((tmp_path / 'summary.json').read_text())
    assert report['num_images'] == 2
    assert all('/val/' in path for path in report['images'])
    first, second = report['settings']
    assert second['total']['gsops']['mean'] < first['total']['gsops']['mean']
    assert first['total']['firing_rate'] > 0.05  # calibrated: it fires
    assert 'backbone.stages.2' in first['stages']
    assert all(abs(v - 0.5) < 0.1 for v in second['realised_keep'].values())
    image = cv2.imread(str(tmp_path / 'energy.png'))
    assert image is not None and image.std() > 0


@pytest.mark.parametrize('args, fragment', [
    (['--num-images', '0'], '--num-images must be >= 1'),
    (['--keep', '1.0', '1.5'], '--keep values must be in (0, 1]'),
    (['missing.pth'], 'checkpoint not found: missing.pth'),
])
def test_energy_tool_bad_input_is_one_error_line(tmp_path, args, fragment):
    result = call_main('tools/analysis/energy.py', DET_DEMO, *args,
                       '--out-dir', tmp_path)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in result.stderr
    assert lines[-1].startswith('error: ') and fragment in lines[-1]
