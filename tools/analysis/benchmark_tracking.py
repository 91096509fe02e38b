"""Tracker speed, dense vs pruned: frames per second of encoder + head.

    python tools/analysis/benchmark_tracking.py \
        [configs/event_sot/sdtv3_sot_demo.py] [--keep 0.78 0.56] \
        [--scorer IRToPScorer] [--threads 1] [--repeats 20] [--warmup 3]

Builds the config's tracker (``mmengine.Config.fromfile`` +
``MODELS.build``) once per setting, dense (``encoder.pruning=None``) and at
each ``--keep`` (the config's ``encoder.pruning`` with that ratio, or IRToP
when the config has none), all on the same weights with randomised BN
statistics, and times ``tracker(inputs, mode='tensor')`` (the joint encoder
and the centre head, no cropping) on random event crops ``[1, T, 2, S, S]``.
The settings run interleaved in this one process (one forward of each per
round), so the printed ratios compare like with like; each setting's time is
the median over ``--repeats`` rounds. Also printed: the realised share of
search tokens that ran each block. A benchmark, not a test.
"""
import argparse
import copy
import statistics
import time
from typing import Dict, List

import torch
from mmengine.config import Config

DEMO_CONFIG = 'configs/event_sot/sdtv3_sot_demo.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEMO_CONFIG)
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--scorer', help='scorer type of the pruned '
                        "settings (default: the config's, else IRToPScorer)")
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def randomise_norms(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so the spiking layers fire."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            shape = module.running_mean.shape
            module.running_mean.copy_(
                0.1 * torch.randn(shape, generator=generator))
            module.running_var.copy_(
                0.5 + torch.rand(shape, generator=generator))
            module.bias.data.copy_(
                0.2 + 0.8 * torch.rand(shape, generator=generator))


def build_trackers(cfg: Config, keeps: List[float],
                   scorer: str = None) -> Dict[float, torch.nn.Module]:
    """One tracker per keep ratio (1.0 = dense), sharing the weights."""
    import mmtpspike  # noqa: F401 (registers the models)
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    base = copy.deepcopy(cfg.model)
    pruning = dict(base.encoder.get('pruning') or {})
    if scorer:
        pruning['scorer'] = dict(type=scorer)
    trackers = {}
    for keep in keeps:
        model_cfg = copy.deepcopy(base)
        model_cfg.encoder.pruning = None if keep >= 1 else dict(
            pruning, keep_ratios=keep)
        torch.manual_seed(0)
        trackers[keep] = MODELS.build(model_cfg).eval()
    randomise_norms(trackers[1.0])
    for keep in keeps:
        trackers[keep].load_state_dict(trackers[1.0].state_dict())
    return trackers


def event_inputs(cfg: Config, device: str) -> dict:
    """Random event counts for the config's crop sizes and ``T``."""
    steps = cfg.model.encoder.get('num_timesteps', 1)
    generator = torch.Generator().manual_seed(1)
    inputs = {}
    for key, size in (('template', cfg.model.template_size),
                      ('search', cfg.model.search_size)):
        rate = torch.full((1, steps, 2, size, size), 0.3)
        inputs[key] = torch.poisson(rate, generator=generator).to(device)
    return inputs


def search_keep(tracker) -> List[float]:
    """Share of the search tokens that ran each block in the last
    forward."""
    return [float(kept.float().mean())
            for kept in tracker.encoder.search_kept_maps()]


@torch.no_grad()
def benchmark(trackers, inputs, warmup: int, repeats: int,
              device: str) -> Dict[float, List[float]]:
    """Interleaved timing: per round, one forward of every setting."""
    times = {keep: [] for keep in trackers}
    for round_index in range(warmup + repeats):
        for keep, tracker in trackers.items():
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            tracker(inputs, None, 'tensor')
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            if round_index >= warmup:
                times[keep].append(time.perf_counter() - start)
    return times


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    keeps = [1.0] + [k for k in args.keep if k != 1.0]
    trackers = {keep: tracker.to(args.device) for keep, tracker in
                build_trackers(cfg, keeps, args.scorer).items()}
    inputs = event_inputs(cfg, args.device)
    times = benchmark(trackers, inputs, args.warmup, args.repeats,
                      args.device)
    dense = statistics.median(times[1.0])
    encoder = cfg.model.encoder
    print(f'{args.config}: template {cfg.model.template_size} px, search '
          f'{cfg.model.search_size} px, T={encoder.get("num_timesteps", 1)}, '
          f'{args.device}, {args.threads} thread(s), median of '
          f'{args.repeats} interleaved rounds')
    print(f'{"keep":>6} {"ms":>9} {"fps":>8} {"speed-up":>9}  '
          'search tokens run per block')
    for keep, tracker in trackers.items():
        median = statistics.median(times[keep])
        shares = 'all' if keep >= 1 else ' '.join(
            f'{share:.3f}' for share in search_keep(tracker))
        print(f'{keep:>6.2f} {1e3 * median:>9.2f} {1 / median:>8.2f} '
              f'{dense / median:>8.2f}x  {shares}')


if __name__ == '__main__':
    main()
