"""Test-time sampling of tracking sequences: every frame of a sequence, in
order, on one rank."""
from typing import Dict, Iterator, List, Optional, Sized

from mmengine.dist import get_dist_info
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


def sequence_spans(dataset: Sized) -> Dict[str, List[int]]:
    """Sample indices of each sequence, in dataset order.

    Args:
        dataset: A dataset whose ``get_data_info(i)`` holds ``'sequence'``
            (the sequence name) and whose samples of one sequence are
            consecutive frames in order.

    Raises:
        KeyError: the data infos have no ``'sequence'``.
        ValueError: the frames of a sequence are not consecutive.
    """
    spans: Dict[str, List[int]] = {}
    previous = None
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        if 'sequence' not in info:
            raise KeyError(
                f'SequenceSampler needs a "sequence" name in every data info '
                f'of {type(dataset).__name__}; sample {index} has '
                f'{sorted(info)}. Use it with a tracking dataset such as '
                f'EventSOTDataset in test mode')
        name = info['sequence']
        if name in spans and name != previous:
            raise ValueError(
                f'the frames of sequence {name!r} are not consecutive in '
                f'{type(dataset).__name__} (sample {index} returns to it): a '
                f'tracker must see each sequence in one run, in order')
        spans.setdefault(name, []).append(index)
        previous = name
    return spans


def split_sequences(spans: Dict[str, List[int]],
                    world_size: int) -> List[List[int]]:
    """Whole sequences dealt to ranks, longest first to the least loaded
    rank (ties: the lowest rank), each rank's sequences in dataset order.

    Returns:
        list[list[int]]: Sample indices per rank.
    """
    loads = [0] * world_size
    owners: Dict[str, int] = {}
    for name in sorted(spans, key=lambda name: -len(spans[name])):
        rank = loads.index(min(loads))
        owners[name] = rank
        loads[rank] += len(spans[name])
    return [[index for name, indices in spans.items()
             if owners[name] == rank for index in indices]
            for rank in range(world_size)]


@DATA_SAMPLERS.register_module()
class SequenceSampler(Sampler):
    """Every frame of a sequence, in order, on one rank.

    Single-object trackers carry the target from one frame to the next, so a
    sequence can neither be shuffled nor split across processes (mmengine's
    ``DefaultSampler`` deals samples to ranks round robin). This sampler
    gives each rank whole sequences, balanced by frame count, and never
    repeats a sample; ranks may therefore hold different numbers of samples,
    which the tracking metric collects without truncation
    (:class:`~mmtpspike.evaluation.metrics.OPEMetric`).

    Args:
        dataset: A tracking dataset in test mode (see
            :func:`sequence_spans`).
        seed (int, optional): What mmengine's runner gives every sampler;
            unused, the order is the sequences' own.

    Example:
        >>> class Frames:
        ...     infos = [dict(sequence=s) for s in 'aaabbc']
        ...     def __len__(self):
        ...         return len(self.infos)
        ...     def get_data_info(self, index):
        ...         return self.infos[index]
        >>> list(SequenceSampler(Frames()))
        [0, 1, 2, 3, 4, 5]
        >>> split_sequences(sequence_spans(Frames()), 2)
        [[0, 1, 2], [3, 4, 5]]
    """

    def __init__(self, dataset: Sized, seed: Optional[int] = None) -> None:
        rank, world_size = get_dist_info()
        self.indices = split_sequences(sequence_spans(dataset),
                                       world_size)[rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Nothing changes between epochs (the order is the sequences')."""
