"""TokenStatsHook: no host sync per iteration, statistics over all ranks."""
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from mmtpspike.engine.hooks import TokenStatsHook
from mmtpspike.models.pruning import TokenRecord

SYNCING = ('item', 'tolist', '__float__', '__int__', '__bool__', 'cpu')


def _forbid_host_sync(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError('host synchronisation inside an iteration')

    for name in SYNCING:
        monkeypatch.setattr(torch.Tensor, name, refuse)


def test_callbacks_never_synchronise(monkeypatch):
    hook = TokenStatsHook()
    spike_hook = hook._spike_counter('backbone.stages.2.blocks.0.attn.q_spike')
    record = TokenRecord('stages.2.blocks.0', 2, 0.5,
                         kept=torch.rand(2, 4, 4) > 0.5,
                         valid=torch.ones(2, 4, 4, dtype=torch.bool))
    spikes = torch.randint(0, 5, (2, 8, 16)).float() / 4
    with monkeypatch.context() as patch:
        _forbid_host_sync(patch)
        for _ in range(3):
            hook._on_record(record)
            spike_hook(None, (), spikes)
    stats = hook._summary()
    kept = float((record.kept & record.valid).sum()) / 32
    assert stats['tokens/keep_stages.2.blocks.0'] == pytest.approx(kept)
    assert stats['tokens/keep_mean'] == pytest.approx(kept)
    assert stats['spikes/rate_stage3'] == pytest.approx(float(spikes.mean()))
    assert stats['spikes/rate_all'] == pytest.approx(float(spikes.mean()))
    assert hook._summary() == {}, 'the tally restarts after each summary'


@pytest.mark.slow  # a torchrun launch
def test_tally_is_reduced_over_ranks(tmp_path):
    """Two gloo processes with different counts report the global ratio."""
    script = tmp_path / 'reduce.py'
    script.write_text(textwrap.dedent('''
        import faulthandler
        # a rank stuck past a minute prints where and exits (the test fails
        # with that stack instead of waiting for its timeout)
        faulthandler.dump_traceback_later(60, exit=True)
        import torch
        import torch.distributed as dist
        from mmtpspike.engine.hooks.token_stats_hook import _DeviceTally
        from mmtpspike.utils.distributed import shutdown_distributed
        dist.init_process_group('gloo')
        rank = dist.get_rank()
        tally = _DeviceTally()
        # rank 0: 1 of 4 tokens kept; rank 1: 6 of 8
        tally.add('keep', torch.tensor([1., 6.][rank]),
                  torch.tensor([4., 8.][rank]))
        print(f'rank{rank} keep={tally.reduce()["keep"]:.6f}', flush=True)
        shutdown_distributed()  # as tools/train.py; see its docstring
    '''))
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', str(script)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        assert f'rank{rank} keep={7 / 12:.6f}' in result.stdout
