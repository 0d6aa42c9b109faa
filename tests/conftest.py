"""Shared test set-up."""

from typing import Any

import pytest
import torch

#: Every way of reading a tensor's values on the host (a device synchronisation on a GPU).
HOST_READS = ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "numpy")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Test tensors are small: one intra-op thread, so that no op waits on a busy second core
    (with two threads, an op can stall for milliseconds while the other core runs other work).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def host_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts every read of a tensor's values on the host while the test runs, by name
    (``nonzero`` without a size counts; with one it reads nothing)."""
    reads: list[str] = []

    def counted(name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not (name == "nonzero" and "size" in kwargs):
                reads.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.Tensor, "nonzero", counted("nonzero", torch.Tensor.nonzero))
    monkeypatch.setattr(torch, "nonzero", counted("nonzero", torch.nonzero))
    return reads


# --- lines for the end of the test report -------------------------------------------------

_REPORT = pytest.StashKey[dict[str, list[str]]]()


@pytest.fixture(scope="session")
def report_lines(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """Lines a test wants in the report of a plain ``pytest`` run (captured output is not
    shown for tests that pass), by section; printed by :func:`pytest_terminal_summary`."""
    return request.config.stash.setdefault(_REPORT, {})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for section, lines in config.stash.get(_REPORT, {}).items():
        terminalreporter.write_sep("-", section)
        for line in lines:
            terminalreporter.write_line(line)


# With pytest-xdist (`pytest -n 2`), each worker hands its lines to the controller, which
# prints them. `--dist loadfile` keeps a module's tests in one worker, so a module's lines
# are whole.


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set in an xdist worker only
    if output is not None:
        output["cogrl_report"] = session.config.stash.get(_REPORT, {})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    report = node.config.stash.setdefault(_REPORT, {})
    for section, lines in getattr(node, "workeroutput", {}).get("cogrl_report", {}).items():
        report.setdefault(section, []).extend(lines)
