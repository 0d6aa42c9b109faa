"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Test tensors are small: one intra-op thread, so that no op waits on a busy second core
    (with two threads, an op can stall for milliseconds while the other core runs other work).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
