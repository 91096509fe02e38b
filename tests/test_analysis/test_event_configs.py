"""The analysis tools on an event config: inputs are the samples of its
test set, through its own pipeline (untrained model, BN statistics set from
those samples)."""
import json

import cv2
import pytest

from tool_runner import call_main

EVENT_DEMO = 'configs/event_det/sdtv3_tp_gen1_demo.py'


def test_complexity_counts_event_samples(tmp_path):
    out = tmp_path / 'report.json'
    result = call_main('tools/analysis/complexity.py', EVENT_DEMO, '--keep',
                       '1.0', '0.56', '--num-images', '2', '--out', str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report['shape'] == [120, 152]  # Gen1 downsampled by 2
    assert report['images'] == ['demo_test_00_100000us',
                                'demo_test_00_150000us']
    dense, pruned = report['settings']
    assert dense['gsops'] > 0
    assert pruned['backbone_gmacs'] < dense['backbone_gmacs']
    assert 'zero-padded' not in result.stdout + result.stderr


def test_energy_depends_on_the_event_samples(tmp_path):
    result = call_main('tools/analysis/energy.py', EVENT_DEMO,
                       '--num-images', '2', '--keep', '1.0',
                       '--out-dir', str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / 'summary.json').read_text())
    total = summary['settings'][0]['total']
    # two windows with different events fire differently
    assert total['gsops']['std'] > 0
    # event counts are integer spikes: the encoding conv counts SOPs
    assert total['mac_layer_gmacs']['mean'] == 0
    assert summary['timesteps'] == 4


def test_token_maps_are_drawn_over_event_frames(tmp_path):
    result = call_main('tools/analysis/visualize_tokens.py', EVENT_DEMO,
                       'none', '--num-samples', '1', '--out-dir',
                       str(tmp_path))
    assert result.returncode == 0, result.stderr
    grid = cv2.imread(str(tmp_path / 'demo_test_00_100000us_tokens.png'))
    # 8 blocks of 152-pixel tiles; the first tile of the top row is the
    # event picture with stopped tokens tinted: mostly white background,
    # and event pixels, red (ON) or blue (OFF)
    assert grid.shape[1] == 8 * 152
    tile = grid[20:130, :152].reshape(-1, 3).astype(int)
    assert (tile == 255).all(1).mean() > 0.2
    assert ((tile[:, 2] > 200) & (tile[:, 0] < 80)).any()


@pytest.mark.parametrize('tool, args', [
    ('tools/analysis/complexity.py', ['--images', 'x.jpg']),
    ('tools/analysis/visualize_tokens.py', ['none', 'x.jpg', '--out-dir',
                                            'unused']),
])
def test_image_arguments_are_refused_for_event_configs(tool, args):
    result = call_main(tool, EVENT_DEMO, *args)
    assert result.returncode == 1
    assert 'samples of its test set' in result.stderr
