"""The runnable examples in public docstrings stay true."""
import doctest

import pytest

from mmtpspike.models.backbones import (prunable, qkformer, sdtv1, sdtv3,
                                        spikformer)
from mmtpspike.models.necks import simple_pyramid, spike_fpn


@pytest.mark.parametrize(
    'module',
    [prunable, qkformer, sdtv1, sdtv3, spikformer, simple_pyramid, spike_fpn],
    ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
