import pytest

from mmtpspike.datasets.samplers import SequenceSampler
from mmtpspike.datasets.samplers.sequence_sampler import (sequence_spans,
                                                          split_sequences)


class Frames:
    """A stand-in tracking dataset: one data info per frame."""

    def __init__(self, names):
        self.infos = [dict(sequence=name) for name in names]

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]


def test_spans_keep_dataset_order():
    assert sequence_spans(Frames('aabbbc')) == dict(
        a=[0, 1], b=[2, 3, 4], c=[5])


@pytest.mark.parametrize('world_size', [1, 2, 3, 5])
def test_ranks_hold_whole_sequences_once(world_size):
    names = 'a' * 7 + 'b' * 2 + 'c' * 5 + 'd' * 3 + 'e'
    spans = sequence_spans(Frames(names))
    parts = split_sequences(spans, world_size)
    assert sorted(i for part in parts for i in part) == list(range(len(names)))
    for part in parts:
        assert part == sorted(part)  # frames in order
        for indices in spans.values():
            assert set(indices) <= set(part) or not set(indices) & set(part)


def test_balanced_by_frames():
    # longest first to the least loaded: a 7 -> 0, c 5 -> 1, d 3 -> 1,
    # b 2 -> 0, e 1 -> 1
    names = 'a' * 7 + 'b' * 2 + 'c' * 5 + 'd' * 3 + 'e'
    parts = split_sequences(sequence_spans(Frames(names)), 2)
    assert [len(part) for part in parts] == [9, 9]


def test_sampler_uses_rank(monkeypatch):
    import mmtpspike.datasets.samplers.sequence_sampler as module
    monkeypatch.setattr(module, 'get_dist_info', lambda: (1, 2))
    sampler = SequenceSampler(Frames('aaabbc'))
    assert list(sampler) == [3, 4, 5] and len(sampler) == 3


def test_interleaved_sequences_are_refused():
    with pytest.raises(ValueError, match="'a' are not consecutive"):
        sequence_spans(Frames('aba'))


def test_needs_sequence_names():
    class NoNames(Frames):
        def get_data_info(self, index):
            return dict(img_path='x.png')

    with pytest.raises(KeyError, match='needs a "sequence" name'):
        SequenceSampler(NoNames('ab'))
