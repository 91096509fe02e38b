"""tools/analysis/benchmark_tracking.py runs on a tiny tracker config and
reports every setting (the numbers are the benchmark's business)."""
import re

import torch

from tool_runner import call_main

TINY_CONFIG = """
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(
    type='SpikingOneStreamTracker',
    data_preprocessor=dict(type='SOTDataPreprocessor'),
    encoder=dict(type='JointTokenEncoder', patch_dims=[8, 16, 32], depth=2,
                 num_heads=4, num_timesteps=2),
    head=dict(type='CenterHead', in_channels=32, feat_channels=16),
    template_size=32, search_size=64)
"""


def test_benchmark_reports_dense_and_pruned(tmp_path):
    config = tmp_path / 'tiny_sot.py'
    config.write_text(TINY_CONFIG)
    result = call_main('tools/analysis/benchmark_tracking.py', str(config),
                       '--keep', '0.5', '--scorer',
                       'CandidateEliminationScorer', '--repeats', '1',
                       '--warmup', '0', '--threads',
                       torch.get_num_threads())
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r'\n +1\.00 +[\d.]+ +[\d.]+ +1\.00x  all', out)
    # 8 x 8 search tokens, 32 of them run each of the two blocks
    assert re.search(r'\n +0\.50 +[\d.]+ +[\d.]+ +[\d.]+x  0\.500 0\.500',
                     out)
