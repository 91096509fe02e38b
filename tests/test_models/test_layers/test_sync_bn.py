"""CPUSyncBN: two gloo processes compute what one batch norm computes on
their concatenated batch (outputs, input / weight gradients, running
statistics)."""
import datetime
import multiprocessing
import os
import traceback

import pytest
import torch
import torch.distributed as dist
from torch import nn

from mmtpspike.models.layers import CPUSyncBN


def init_affine(norm: nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        norm.weight.copy_(0.5 + torch.rand(norm.num_features,
                                           generator=generator))
        norm.bias.copy_(torch.rand(norm.num_features, generator=generator))


def rank_worker(rank, init_file, inputs, grads, results) -> None:
    """One rank: forward / backward its share, send back what it got (or
    the traceback of what went wrong, so the parent never waits forever)."""
    torch.set_num_threads(1)
    try:
        # a short timeout: a rank whose peer failed reports instead of
        # waiting half an hour in a collective
        dist.init_process_group('gloo', init_method=f'file://{init_file}',
                                rank=rank, world_size=2,
                                timeout=datetime.timedelta(seconds=60))
        norm = CPUSyncBN(inputs[rank].shape[1])
        init_affine(norm)
        x = inputs[rank].clone().requires_grad_()
        out = norm(x)
        (out * grads[rank]).sum().backward()
        param_grads = torch.stack([norm.weight.grad, norm.bias.grad])
        dist.all_reduce(param_grads)  # what DDP does (before averaging)
        # numpy: tensors would travel as shared memory of this process
        results.put((rank, ) + tuple(
            t.detach().numpy() for t in (out, x.grad, param_grads,
                                         norm.running_mean, norm.running_var)))
    except BaseException:
        results.put((rank, traceback.format_exc()))
    # leave without the interpreter's exit handlers (a child forked from a
    # long, multi-threaded pytest process can hang in them) and without
    # ending the group: os._exit runs no gloo destructor, so neither
    # failure that shutdown_distributed() guards against can happen here
    os._exit(0)


def run_two_ranks(tmp_path, inputs, grads):
    context = multiprocessing.get_context('fork')
    results = context.SimpleQueue()
    init_file = str(tmp_path / 'rendezvous')
    processes = [
        context.Process(target=rank_worker,
                        args=(rank, init_file, inputs, grads, results))
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    received = sorted((results.get() for _ in processes), key=lambda r: r[0])
    errors = [r[1] for r in received if isinstance(r[1], str)]
    assert not errors, '\n'.join(errors)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [(rank, *map(torch.from_numpy, arrays))
            for rank, *arrays in received]


def flatten_tokens(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, *]`` -> ``[B * prod(*), C]``: one row per normalised value."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


@pytest.mark.parametrize('shapes', [
    [(3, 4, 5, 6), (5, 4, 5, 6)],  # feature maps, different batch sizes
    [(2, 4, 7), (2, 4, 13)],  # token sets of different sizes (pruning)
],
                         ids=['maps', 'tokens'])
def test_matches_batch_norm_on_the_joint_batch(tmp_path, shapes):
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(s, generator=generator) * (1 + i) + i
              for i, s in enumerate(shapes)]
    grads = [torch.randn(s, generator=generator) for s in shapes]
    received = run_two_ranks(tmp_path, inputs, grads)

    reference = nn.BatchNorm1d(shapes[0][1])
    init_affine(reference)
    joint = torch.cat([flatten_tokens(x) for x in inputs]).requires_grad_()
    out = reference(joint)
    (out * torch.cat([flatten_tokens(g) for g in grads])).sum().backward()

    outputs = torch.cat([flatten_tokens(r[1]) for r in received])
    input_grads = torch.cat([flatten_tokens(r[2]) for r in received])
    torch.testing.assert_close(outputs, out.detach())
    torch.testing.assert_close(input_grads, joint.grad)
    for _, _, _, param_grads, mean, var in received:
        torch.testing.assert_close(
            param_grads,
            torch.stack([reference.weight.grad, reference.bias.grad]))
        torch.testing.assert_close(mean, reference.running_mean)
        torch.testing.assert_close(var, reference.running_var)


def test_plain_batch_norm_outside_a_process_group():
    assert not dist.is_initialized()
    x = torch.randn(4, 3, 5, 5)
    norm, reference = CPUSyncBN(3), nn.BatchNorm2d(3)
    torch.testing.assert_close(norm(x), reference(x))
    torch.testing.assert_close(norm.running_var, reference.running_var)
    norm.eval(), reference.eval()
    torch.testing.assert_close(norm(x), reference(x))
    with pytest.raises(ValueError, match='2-D'):
        norm(torch.randn(3))


def test_checkpoints_interchange_with_batch_norm():
    assert CPUSyncBN(6).state_dict().keys() == nn.BatchNorm2d(
        6).state_dict().keys()


def test_tools_build_it_for_sync_bn_type():
    """What ``norm_cfg=dict(type='CPUSyncBN')`` builds (the tools rename
    ``SyncBN`` to it on CPU)."""
    from mmcv.cnn import build_norm_layer
    name, layer = build_norm_layer(dict(type='CPUSyncBN'), 8)
    assert isinstance(layer, CPUSyncBN) and name == 'bn'
