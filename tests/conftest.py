import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

# two threads (the CI machine's cores), or OMP_NUM_THREADS when set, e.g. 1
# to run two test sessions side by side without oversubscribing the cores
THREADS = os.environ.get('OMP_NUM_THREADS') or min(2, os.cpu_count() or 1)
torch.set_num_threads(max(1, int(THREADS)))

# the quick / slow tiers (setup.cfg's slow marker)
from tiers import (pytest_collection_modifyitems,  # noqa: E402,F401
                   pytest_terminal_summary)


@pytest.fixture
def repo_root():
    return ROOT
