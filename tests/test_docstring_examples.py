"""The runnable examples in public docstrings stay true."""
import doctest

import pytest

from mmtpspike.datasets.events import (events, prophesee_dat, protocol,
                                       representations, simulator)
from mmtpspike.datasets.samplers import sequence_sampler
from mmtpspike.evaluation.functional import ope
from mmtpspike.models.backbones import (prunable, qkformer, sdtv1, sdtv3,
                                        spikformer)
from mmtpspike.models.data_preprocessors import event_det_data_preprocessor
from mmtpspike.models.necks import simple_pyramid, spike_fpn
from mmtpspike.visualization import event_frames


@pytest.mark.parametrize(
    'module', [
        prunable, qkformer, sdtv1, sdtv3, spikformer, simple_pyramid,
        spike_fpn, event_det_data_preprocessor, events, prophesee_dat,
        protocol, representations, simulator, event_frames, ope,
        sequence_sampler
    ],
    ids=lambda m: m.__name__)
def test_docstring_examples(module, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)  # examples read the bundled data
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
