"""ONNX export and ``torch.compile`` of a pruned backbone, checked against
eager mode.

The ONNX export traces one forward (the TorchScript-based exporter, which
torch 2.1 and torch 2.x share): Python values computed from tensors during
the trace become constants of the graph. For a backbone without padding
information the token counts ``K = ceil(keep * N)`` depend only on the input
shape, so an exported model is **specialised to the traced input shape**
(batch size included) and is correct for any image of that shape. Two
settings make the counts depend on the image and are refused:

* padding-aware selection (:meth:`PrunableBackbone.set_img_shapes`): the
  valid area, hence ``K``, differs between images;
* dynamic retention (``pruning.dynamic``): ``K`` follows the scores.

Token selection is a stable descending sort (ties go to the lower token
index); it is exported as ONNX ``TopK`` with ``k = N``, whose specification
orders equal values by lower index too, so the exported graph keeps the
tie-breaking (:func:`stable_sort_symbolic`). Gather / scatter of the kept
tokens become ``GatherElements`` / ``ScatterElements``.
"""
import contextlib
import inspect
import os.path as osp
import statistics
import time
import warnings
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
import torch.nn as nn
from torch.onnx import symbolic_helper

#: ONNX opset of the export (TopK with ``largest`` / ``sorted``: >= 11)
OPSET = 17


class ExportError(ValueError):
    """The model or the request cannot be exported faithfully; the message
    names the problem and the fix."""


def check_exportable(model: nn.Module) -> None:
    """Refuse what a shape-specialised trace would get wrong.

    Raises:
        ExportError: padding shapes are pending or the retention is dynamic.
    """
    if getattr(model, '_img_shapes', None) is not None:
        raise ExportError(
            'set_img_shapes() was called before the export: padding-aware '
            'selection keeps a different number of tokens per image and '
            'cannot be traced into a fixed graph; export without image '
            'shapes (every token valid) and feed unpadded images of the '
            'exported shape')
    pruner = getattr(model, 'pruner', None)
    if pruner is not None and pruner.dynamic:
        raise ExportError(
            'pruning.dynamic sets the token count from the scores of each '
            'image; a traced graph would freeze the counts of the example '
            'input. Export with fixed keep_ratios instead')


@symbolic_helper.parse_args('v', 'i', 'i')
def _topk_sort(g, values, dim: int, descending: int):
    size = g.op('Gather', g.op('Shape', values),
                g.op('Constant', value_t=torch.tensor([dim])))
    return g.op('TopK', values, size, axis_i=dim, largest_i=descending,
                sorted_i=1, outputs=2)


def stable_sort_symbolic(g, values, *args):
    """ONNX symbolic of ``aten::sort`` and ``aten::sort.stable``: ``TopK``
    over the whole axis. ONNX ``TopK`` ranks equal values by lower index,
    which is what a stable sort does in either direction; the stock
    symbolic rejects the ``stable`` overload.

    ``args`` is ``(dim, descending)`` or ``(stable, dim, descending)``.
    """
    return _topk_sort(g, values, *args[-2:])


@contextlib.contextmanager
def stable_sort_export(opset: int = OPSET) -> Iterator[None]:
    """Context manager: ``torch.onnx.export`` inside it uses
    :func:`stable_sort_symbolic` for ``aten::sort``."""
    torch.onnx.register_custom_op_symbolic('aten::sort',
                                           stable_sort_symbolic, opset)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic('aten::sort', opset)


def export_onnx(model: nn.Module, inputs: Tuple[torch.Tensor, ...],
                path: str, opset: int = OPSET) -> List[str]:
    """Export ``model`` (eval mode) traced on ``inputs`` to ``path``.

    Args:
        model (nn.Module): e.g. a pruned :class:`SDTV3`.
        inputs (tuple[Tensor]): example inputs, e.g. ``([B, 3, H, W], )``;
            the graph is specialised to their shapes.
        path (str): the ``.onnx`` file to write.
        opset (int): ONNX opset version.

    Returns:
        list[str]: names of the graph outputs, in the model's output order.
    """
    check_exportable(model)
    with torch.no_grad():
        num_outputs = len(_as_list(model(*inputs)))
    output_names = [f'out{i}' for i in range(num_outputs)]
    options = dict(opset_version=opset, input_names=['inputs'],
                   output_names=output_names)
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        options['dynamo'] = False  # torch >= 2.5: the tracing exporter
    was_training = model.training
    model.eval()
    try:
        with stable_sort_export(opset), torch.no_grad(), \
                warnings.catch_warnings():
            # the token counts read from tensors become constants: exact for
            # this input shape (see the module docstring)
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(model, tuple(inputs), path, **options)
    finally:
        model.train(was_training)
    return output_names


def onnx_session(path: str, threads: int = 0):
    """An onnxruntime CPU session of ``path`` (``threads`` 0: its
    default)."""
    import onnxruntime
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX model not found: {path}')
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options,
                                        providers=['CPUExecutionProvider'])


def onnx_runner(session) -> Callable[..., List[torch.Tensor]]:
    """``runner(*inputs) -> [Tensor]``: run an onnxruntime session on
    torch tensors."""
    names = [node.name for node in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> List[torch.Tensor]:
        feeds = {name: x.detach().cpu().contiguous().numpy()
                 for name, x in zip(names, inputs)}
        return [torch.from_numpy(out) for out in session.run(None, feeds)]

    return run


def compile_model(model: nn.Module) -> Callable:
    """``torch.compile`` with the inductor backend for a fixed input shape
    (``dynamic=False``: another shape recompiles)."""
    return torch.compile(model.eval(), backend='inductor', dynamic=False)


def compiled_graphs() -> int:
    """Graphs ``torch.compile`` has compiled in this process so far; a
    forward split by ``n`` graph breaks compiles ``n + 1``, and a growing
    count on the same input shape means recompiles."""
    from torch._dynamo.utils import counters
    return counters['stats']['unique_graphs']


def _as_list(outputs) -> List[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return list(outputs)


def max_abs_diff(outputs: Sequence[torch.Tensor],
                 reference: Sequence[torch.Tensor]) -> float:
    """Largest ``|a - b|`` over all output maps (shapes must agree)."""
    outputs, reference = _as_list(outputs), _as_list(reference)
    if len(outputs) != len(reference):
        raise ValueError(f'{len(outputs)} outputs vs {len(reference)} '
                         'reference outputs')
    diffs = []
    for index, (out, ref) in enumerate(zip(outputs, reference)):
        if tuple(out.shape) != tuple(ref.shape):
            raise ValueError(f'output {index}: shape {tuple(out.shape)} vs '
                             f'reference {tuple(ref.shape)}')
        diffs.append(float((out.float() - ref.float()).abs().max()))
    return max(diffs)


def time_interleaved(runners: Dict[str, Callable], inputs: Tuple,
                     warmup: int, repeats: int) -> Dict[str, float]:
    """Median latency (s) of each ``runner(*inputs)``, one call of each per
    round (interleaved, so drifting machine load hits all alike).

    Returns:
        dict: name -> median seconds over ``repeats`` rounds after
        ``warmup`` rounds.
    """
    times = {name: [] for name in runners}
    with torch.no_grad():
        for round_index in range(warmup + repeats):
            for name, runner in runners.items():
                start = time.perf_counter()
                runner(*inputs)
                if round_index >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
