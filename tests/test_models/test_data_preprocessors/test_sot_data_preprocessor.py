"""SOTDataPreprocessor: stacks training pairs and test frames."""
import doctest

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import MODELS

from mmtpspike.models import SOTDataPreprocessor
from mmtpspike.models.data_preprocessors import sot_data_preprocessor
from mmtpspike.structures import TrackDataSample, track_data_sample


def pair(value):
    sample = TrackDataSample(metainfo=dict(sequence='a'))
    sample.gt_box = [value, 2., 3., 4.]
    return dict(inputs=dict(template=torch.full((2, 2, 4, 4), value,
                                                dtype=torch.uint8),
                            search=torch.full((2, 2, 8, 8), value)),
                data_samples=sample)


def test_stacks_collated_training_pairs():
    preprocessor = MODELS.build(dict(type='SOTDataPreprocessor'))
    assert isinstance(preprocessor, SOTDataPreprocessor)
    batch = pseudo_collate([pair(1.), pair(2.), pair(3.)])
    out = preprocessor(batch, training=True)
    assert set(out['inputs']) == {'template', 'search'}
    template, search = out['inputs']['template'], out['inputs']['search']
    assert template.shape == (3, 2, 2, 4, 4) and template.dtype == torch.float32
    assert search.shape == (3, 2, 2, 8, 8) and search.dtype == torch.float32
    assert search[:, 0, 0, 0, 0].tolist() == [1., 2., 3.]
    assert [s.gt_box[0].item() for s in out['data_samples']] == [1., 2., 3.]


def test_stacks_a_list_of_test_frames():
    frames = [dict(frame=torch.rand(1, 2, 6, 10)) for _ in range(2)]
    out = SOTDataPreprocessor()(dict(inputs=frames))
    assert out['inputs']['frame'].shape == (2, 1, 2, 6, 10)
    torch.testing.assert_close(out['inputs']['frame'][1], frames[1]['frame'])
    assert out['data_samples'] is None


def test_moves_to_the_model_device():
    preprocessor = SOTDataPreprocessor().to('meta')
    out = preprocessor(pseudo_collate([pair(1.)]))
    assert out['inputs']['search'].device.type == 'meta'
    assert out['data_samples'][0].gt_box.device.type == 'meta'


def test_refuses_mixed_shapes_and_unknown_keys():
    frames = [dict(frame=torch.zeros(1, 2, 6, 10)),
              dict(frame=torch.zeros(1, 2, 8, 10))]
    with pytest.raises(ValueError, match="'frame' inputs of one batch"):
        SOTDataPreprocessor()(dict(inputs=frames))
    with pytest.raises(ValueError, match='end the pipeline with PackSOTIn'):
        SOTDataPreprocessor()(dict(inputs=[dict(img=torch.zeros(1, 2, 3,
                                                                3))]))


@pytest.mark.parametrize('module', [sot_data_preprocessor, track_data_sample],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_track_data_sample_boxes_are_float32_of_four():
    sample = TrackDataSample()
    sample.pred_box = torch.tensor([1, 2, 3, 4], dtype=torch.int64)
    sample.pred_score = torch.tensor(0.25)
    assert sample.pred_box.dtype == torch.float32
    assert sample.pred_score == 0.25 and isinstance(sample.pred_score, float)
    with pytest.raises(ValueError, match='shape \\[4\\]'):
        sample.gt_box = [1., 2., 3.]
