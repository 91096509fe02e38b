"""Helpers that run the user's copy of the public SDT-V3 code (not shipped:
only the parts that do not need it are tested here)."""
import math

import pytest

from mmtpspike.analysis.public_sdtv3 import find_public_file, public_k_value
from mmtpspike.utils.config import SetupError


@pytest.mark.parametrize('keep,height,width', [(0.78, 50, 76),
                                               (0.56, 50, 76),
                                               (0.5, 14, 14), (1.0, 8, 12)])
def test_k_value_keeps_the_nearest_square_count(keep, height, width):
    side = int(height * public_k_value(keep, height, width))
    target = keep * height * width
    largest = math.isqrt(height * width)
    assert 1 <= side <= largest
    assert all(abs(side**2 - target) <= abs(s**2 - target)
               for s in range(1, largest + 1))


def test_missing_public_code_names_the_expected_file(tmp_path):
    with pytest.raises(SetupError, match='sdtv3_drop/models_drop.py'):
        find_public_file(str(tmp_path))
    nested = tmp_path / 'sdtv3_drop' / 'models_drop.py'
    nested.parent.mkdir()
    nested.write_text('')
    assert find_public_file(str(tmp_path)) == str(nested)
