"""A tiny activated joint encoder and its inputs for the tracker tests."""
import torch

from active_network import activate
from mmtpspike.models.trackers import JointTokenEncoder

TIMESTEPS, BATCH = 2, 2
TEMPLATE_SIZE, SEARCH_SIZE = 32, 64
#: stride 8: a 4 x 4 template and an 8 x 8 search map of width 32
TINY_ENCODER = dict(patch_dims=(8, 16, 32), depth=2, num_heads=4,
                    num_timesteps=TIMESTEPS)


def event_crops(seed: int = 0, batch: int = BATCH):
    """Random event counts ``[B, T, 2, S, S]`` for template and search."""
    generator = torch.Generator().manual_seed(seed)
    template = torch.poisson(torch.full(
        (batch, TIMESTEPS, 2, TEMPLATE_SIZE, TEMPLATE_SIZE), 0.5),
        generator=generator)
    search = torch.poisson(torch.full(
        (batch, TIMESTEPS, 2, SEARCH_SIZE, SEARCH_SIZE), 0.5),
        generator=generator)
    return template, search


def encoder_pair(block_type: str = 'sdtv3', **pruning):
    """An activated dense encoder, a pruned copy on the same weights (None
    without ``pruning``) and the crops."""
    torch.manual_seed(0)
    template, search = event_crops()
    dense = activate(JointTokenEncoder(**TINY_ENCODER, block_type=block_type),
                     template, search)
    pruned = None
    if pruning:
        pruned = JointTokenEncoder(**TINY_ENCODER, block_type=block_type,
                                   pruning=pruning).eval()
        pruned.load_state_dict(dense.state_dict())
    return dense, pruned, (template, search)


def tiny_tracker(**pruning):
    """An activated tiny ``SpikingOneStreamTracker`` (template 32 px,
    search 64 px, stride 8, two blocks), in eval mode."""
    from active_network import activate
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    encoder = dict(type='JointTokenEncoder', **TINY_ENCODER,
                   pruning=pruning or None)
    tracker = MODELS.build(dict(
        type='SpikingOneStreamTracker', encoder=encoder,
        head=dict(type='CenterHead', in_channels=32, feat_channels=16),
        template_size=TEMPLATE_SIZE, search_size=SEARCH_SIZE,
        data_preprocessor=dict(type='SOTDataPreprocessor')))
    template, search = event_crops()
    return activate(tracker, dict(template=template, search=search), None,
                    'tensor')
