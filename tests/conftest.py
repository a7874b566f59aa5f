import sys
import zlib
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def gen(request) -> torch.Generator:
    """A generator seeded from the test's id: different data in every test, reproducible on failure."""
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))
