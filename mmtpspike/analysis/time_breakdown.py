"""Where a backbone's forward spends its time, by stage and kind of work.

:func:`time_breakdown` runs forwards under ``torch.profiler`` with a scope
around every stage (``run_stage`` and the stage's down-sampling) and around
the parts of the network that are not plain ops: the SepConv mixers, the
spike neurons, the token scorer and the selection (tile / token indices).
Every profiled op's own time goes to the stage it ran in and to its
innermost part; ops outside any part are sorted by what they do (convs,
gathers, scatters and writes, copies, other). Times are the profiler's
per-op wall time on the calling thread (intra-op threads included), in ms
per forward.
"""
import functools
from collections import defaultdict
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

from mmtpspike.models.layers.sdtv3_blocks import SepConv
from mmtpspike.models.layers.spike_neurons import SpikeNeuron
from mmtpspike.models.pruning import TokenPruner

STAGE_SCOPE = 'stage:'
PART_SCOPE = 'part:'

#: what an op outside any part does, by its aten name
OP_KINDS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('convs', ('aten::mkldnn_convolution', 'aten::_convolution',
               'aten::convolution', 'aten::conv2d', 'aten::mm',
               'aten::addmm', 'aten::bmm', 'aten::matmul')),
    ('gathers', ('aten::index_select', 'aten::gather', 'aten::index',
                 'aten::take')),
    ('scatters / writes', ('aten::index_add_', 'aten::index_add',
                           'aten::scatter_add_', 'aten::scatter_add',
                           'aten::index_copy', 'aten::index_copy_',
                           'aten::index_fill_', 'aten::index_fill',
                           'aten::index_put_', 'aten::scatter',
                           'aten::scatter_')),
    ('copies', ('aten::copy_', 'aten::cat', 'aten::clone', 'aten::fill_',
                'aten::zero_', 'aten::contiguous', 'aten::constant_pad_nd')),
)
_KIND_OF_OP = {op: kind for kind, ops in OP_KINDS for op in ops}


def _scoped(function: Callable, name: str) -> Callable:
    """``function`` run inside a profiler scope ``name``."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        with record_function(name):
            return function(*args, **kwargs)
    return run


def _patch(owner, attribute: str, name: str, undo: List) -> None:
    """Wrap ``owner.attribute`` (a bound method or ``forward``) in a scope
    as an instance attribute, remembering how to undo it."""
    undo.append((owner, attribute, owner.__dict__.get(attribute)))
    setattr(owner, attribute, _scoped(getattr(owner, attribute), name))


def _restore(undo: List) -> None:
    for owner, attribute, previous in reversed(undo):
        if previous is None:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, previous)


def _scopes(backbone: nn.Module) -> List:
    """Put the stage and part scopes on ``backbone``; returns what
    :func:`_restore` needs to take them off."""
    undo: List = []
    run_stage = backbone.run_stage

    def scoped_run_stage(stage, x, state):
        with record_function(STAGE_SCOPE + stage_name(stage.name)):
            return run_stage(stage, x, state)

    undo.append((backbone, 'run_stage', backbone.__dict__.get('run_stage')))
    backbone.run_stage = scoped_run_stage
    for name, module in backbone.named_modules():
        if name.endswith('downsample'):
            _patch(module, 'forward', STAGE_SCOPE + stage_name(name), undo)
        elif isinstance(module, SepConv):
            _patch(module, 'forward', PART_SCOPE + 'mixer (SepConv)', undo)
            _patch(module, 'forward_at', PART_SCOPE + 'mixer (SepConv)',
                   undo)
        elif isinstance(module, SpikeNeuron):
            _patch(module, 'forward', PART_SCOPE + 'spike neurons', undo)
        elif isinstance(module, TokenPruner):
            _patch(module.scorer, 'forward', PART_SCOPE + 'token scoring',
                   undo)
            for method in ('_select', '_select_tiles'):
                _patch(module, method, PART_SCOPE + 'selection', undo)
    return undo


def stage_name(name: str) -> str:
    """``'stages.1.blocks'`` -> ``'stages.1'``, ``'stem.downsample'`` ->
    ``'stem'``."""
    parts = name.split('.')
    return '.'.join(parts[:2]) if parts[0] == 'stages' else parts[0]


def _attribute(event) -> Tuple[str, str]:
    """The stage (outermost stage scope) and part (innermost part scope,
    else the op's kind) of a profiled op."""
    stage, part = None, None
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(STAGE_SCOPE):
            stage = parent.name[len(STAGE_SCOPE):]
        elif part is None and parent.name.startswith(PART_SCOPE):
            part = parent.name[len(PART_SCOPE):]
        parent = parent.cpu_parent
    if part is None:
        part = _KIND_OF_OP.get(event.name, 'other')
    return stage or 'outside the stages', part


def time_breakdown(backbone: nn.Module, run: Callable[[], object],
                   repeats: int = 2) -> Dict[str, Dict[str, float]]:
    """Milliseconds per forward of every ``{stage: {part: ms}}``.

    Args:
        backbone (nn.Module): a :class:`PrunableBackbone` (scopes are put on
            it for the run and removed afterwards).
        run (callable): one forward of the model that holds ``backbone``.
        repeats (int): profiled forwards (after one unprofiled warm-up).
    """
    undo = _scopes(backbone)
    try:
        with torch.no_grad():
            run()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(repeats):
                    run()
    finally:
        _restore(undo)
    totals: Dict[str, Dict[str, float]] = defaultdict(
        lambda: defaultdict(float))
    for event in prof.events():
        if event.name.startswith((STAGE_SCOPE, PART_SCOPE)):
            continue
        stage, part = _attribute(event)
        totals[stage][part] += event.self_cpu_time_total / 1e3 / repeats
    return {stage: dict(parts) for stage, parts in totals.items()}
