"""Training-free sweep of scorer settings and per-stage keep ratios."""
import json

import pytest

from mmtpspike.analysis.sweep import ratio_grid, scorer_grid
from tool_runner import run_tool


def test_scorer_grid_skips_what_cannot_differ():
    grid = scorer_grid([0, 1], [0, 1], [3, 5], num_timesteps=1)
    # T = 1: the temporal weight has no effect, only the first is used;
    # w_s = w_t = 0 is no criterion
    assert [(g['spatial_weight'], g['temporal_weight'], g['window_size'])
            for g in grid] == [(1., 0., 3), (1., 0., 5)]
    assert len(scorer_grid([0, 1], [0, 1], [3], num_timesteps=4)) == 3


def test_ratio_grid_keeps_combinations_within_budget():
    # cost: stage 1 weighs 3, stage 2 weighs 1
    def cost(ratios):
        return 3 * ratios[0] + ratios[1]

    fits = ratio_grid([0.5, 1.0], 2, cost, dense_cost=4.0, budget=0.8)
    assert fits == [((0.5, 1.0), 0.625), ((0.5, 0.5), 0.5)]
    with pytest.raises(ValueError, match='budget'):
        ratio_grid([0.5], 2, cost, 4.0, 1.5)


def test_budget_search_on_the_demo_segmentor(tmp_path):
    out = run_tool('tools/analysis/sweep.py',
                   'configs/seg/sdtv3_tp_ade20k_demo.py', 'none',
                   '--num-images', '1', '--budget', '0.95',
                   '--stage-ratios', '0.5', '1.0', '--out',
                   str(tmp_path / 'sweep.json'),
                   '--cfg-options', f'work_dir={tmp_path}')
    assert '| ratios | macs_share | mIoU |' in out
    assert 'search cost: 2 evaluations of 1 images' in out
    result = json.loads((tmp_path / 'sweep.json').read_text())
    assert all(row['macs_share'] <= 0.95 for row in result['rows'])
