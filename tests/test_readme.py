"""Every ```python and ```bash block of README.md runs, so that the README cannot drift.

The blocks run in the README's order, in one temporary folder (a user's working directory),
each in its own process through this environment's ``python`` and ``cogrl``:

- A python block runs as a script, except one under ``<!-- readme-file: NAME -->``, which is
  written to NAME first (a module the other blocks import, or run: ``python guess.py``).
- A bash block runs its commands one by one (comments and line continuations as bash reads
  them). ``cogrl ...`` and ``python FILE`` run; the set-up lines, ``pytest`` and
  ``tensorboard`` are skipped, each for the reason in :data:`SKIPPED`; any other command
  fails the test, so a new kind of command gets a decision here.
- A ``runs/...__<time>`` placeholder is the run folder the commands before it made. The
  ``cogrl train`` whose run a later ``--resume`` continues is interrupted (Ctrl-C, as the
  README says) once its progress bar shows, and must exit with status 130.

The default suite runs the training examples with small step counts (substituted here, see
:func:`small`); ``pytest -m learning`` runs them as written and checks what the README says
they reach.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON = sys.executable
COGRL = str(Path(sys.executable).with_name("cogrl"))

#: Steps of a training example in the default suite: enough for a few updates of each
#: learner's defaults and presets (PPO's GlimpseDigits preset collects 2,048 per update).
SMALL_STEPS = 2_048
#: Gradient steps of ``agent.train(N)`` (learning from a replay without acting).
SMALL_GRADIENT_STEPS = 16
#: Seconds any one command may take before the test fails (default suite).
TIMEOUT = 300

SKIPPED = {
    "python3 -m venv": "set-up: the tests run inside the environment it made (.ci/run runs "
    "the set-up on a fresh machine)",
    ".": "set-up: activating the environment the tests already run in",
    "pip install": "set-up: installing into the environment the tests already run in",
    "pytest": "the test suite itself (this test is part of it)",
    "tensorboard": "a server that runs until it is stopped",
    "python benchmarks/attention.py": "a benchmark: tens of minutes per cell, and its report "
    "rewrites BENCHMARKS.md; its figures are recorded there with their commands",
}

#: What the README says an example reaches, checked when it runs as written (``-m
#: learning``): a command's fragment -> (a regex on its output, its lowest value).
CLAIMS = {
    "--env cogrl/GlimpseDigits-v0 --agent ram": (r"accuracy ([\d.]+)%", 85.0),
    "--env CartPole-v1 --agent dqn --steps 200000": (r"mean return ([\d.]+)", 475.0),
    "--env cogrl/GlimpseDigits-v0 --agent ppo": (r"accuracy ([\d.]+)%", 85.0),
    "--env cogrl/StoryQA-v0 --agent ppo": (r"accuracy ([\d.]+)%", 85.0),
    "python guess.py": (r"'mean_return': ([\d.]+)", 9.0),
    "python guess_core.py": (r"'mean_return': ([\d.]+)", 9.0),
    # The shared-replay block: both agents far above random play (~22).
    'preset("dqn", "CartPole-v1")': (r"mean return ([\d.]+)", 100.0),
}


@dataclass
class Block:
    language: str  # "python" or "bash"
    code: str
    line: int  # where the block starts in README.md
    file: str | None  # <!-- readme-file: NAME --> above it

    @property
    def id(self) -> str:
        return f"{self.language}-line{self.line}" + (f"-{self.file}" if self.file else "")


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    blocks = []
    pattern = r"((?:<!--[^\n]*-->\n)*)```(python|bash)\n(.*?)^```"
    for match in re.finditer(pattern, text, re.S | re.M):
        marker = re.search(r"<!-- readme-file: (\S+) -->", match.group(1))
        line = text.count("\n", 0, match.start(2)) + 1
        blocks.append(Block(match.group(2), match.group(3), line, marker and marker.group(1)))
    return blocks


def commands(code: str) -> list[list[str]]:
    """The commands of a bash block as bash splits them: continuations joined, comments gone,
    ``&&`` and ``;`` between commands."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in (";", "&&"):
                if words:
                    found.append(words)
                words = []
            else:
                words.append(word)
    return found


#: Commands that need an optional extra, skipped (with the reason) where it is absent: a
#: command's start -> (the module the extra installs, the reason).
NEEDS_EXTRA = {
    "cogrl sweep": ("ray", "cogrl sweep needs the [ray] extra (Ray Tune), not installed"),
    "cogrl plot sweeps/": ("ray", "plots the sweep above, which needs the [ray] extra"),
}


def skip_reason(words: list[str]) -> str | None:
    line = " ".join(words)
    for start, reason in SKIPPED.items():
        if line == start or line.startswith(start + " "):
            return reason
    for start, (module, reason) in NEEDS_EXTRA.items():
        if line.startswith(start) and not installed(module):
            return reason
    return None


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def small(block_or_words: str | list[str]) -> str | list[str]:
    """The example with small step counts: ``learn(N)`` and ``--steps N`` (of ``cogrl train``
    and ``cogrl sweep``) at most :data:`SMALL_STEPS`, ``train(N)`` at most
    :data:`SMALL_GRADIENT_STEPS`; a ``cogrl train`` without ``--steps`` gets ``--steps
    SMALL_STEPS``."""
    if isinstance(block_or_words, str):

        def cap(match: re.Match, limit: int) -> str:
            return f"{match.group(1)}{min(int(match.group(2).replace('_', '')), limit)}"

        code = re.sub(
            r"(\.learn\((?:total_timesteps=)?)([\d_]+)",
            lambda m: cap(m, SMALL_STEPS),
            block_or_words,
        )
        return re.sub(r"(\.train\()([\d_]+)", lambda m: cap(m, SMALL_GRADIENT_STEPS), code)
    words = list(block_or_words)
    if words[:2] == ["cogrl", "sweep"] and "--steps" in words:
        at = words.index("--steps") + 1
        words[at] = str(min(int(words[at]), SMALL_STEPS))
        return words
    if words[:2] != ["cogrl", "train"] or "--resume" in words:
        return words
    if "--steps" in words:
        at = words.index("--steps") + 1
        words[at] = str(min(int(words[at]), SMALL_STEPS))
    else:
        words += ["--steps", str(SMALL_STEPS)]
    return words


def shared(word: str) -> str:
    """``../shared/...`` (the README's path from the repository's root to the project's shared
    data), alone or as a setting's value (``env.root=../shared/...``), as an absolute path;
    the test skips where that folder is not next to the clone."""
    key, eq, value = word.rpartition("=") if "=../shared/" in word else ("", "", word)
    if not value.startswith("../shared/"):
        return word
    path = README.parent.parent / value.removeprefix("../")
    if not path.exists():
        pytest.skip(f"{value} is not next to this clone ({path})")
    return key + eq + str(path)


def environment() -> dict[str, str]:
    """A headless machine's environment, with one torch thread for the example scripts (as
    ``cogrl`` uses): with more, a busy machine made them many times slower."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["OMP_NUM_THREADS"] = "1"
    return env


class Readme:
    """Runs README blocks in order in ``folder``, as written or with small step counts."""

    def __init__(self, folder: Path, as_written: bool) -> None:
        self.folder = folder
        self.as_written = as_written
        self.blocks = readme_blocks()
        self.outputs: dict[str, str] = {}  # command line -> its output
        self.codes: dict[str, str] = {}  # python block -> its code
        self.seconds: dict[str, float] = {}  # command line -> its wall time
        for block in self.blocks:
            if block.file:
                code = block.code if as_written else small(block.code)
                (folder / block.file).write_text(code)
        self.timeout = None if as_written else TIMEOUT

    def run_block(self, block: Block) -> None:
        if block.language == "python":
            if block.file is None:
                code = block.code if self.as_written else small(block.code)
                script = self.folder / f"readme_line{block.line}.py"
                script.write_text(code)
                what = f"README.md line {block.line}"
                self.outputs[what] = self.run([PYTHON, script.name], what)
                self.codes[what] = block.code
            return
        for words in commands(block.code):
            if skip_reason(words):
                continue
            self.run_command(words)

    def run_command(self, words: list[str]) -> None:
        words = [shared(self.placeholder(w)) for w in words]
        line = shlex.join(words)
        if not self.as_written:
            words = small(words)
        if words[0] == "cogrl":
            argv = [COGRL, *words[1:]]
        elif words[0] == "python" and len(words) == 2:
            argv = [PYTHON, *words[1:]]
        else:
            raise AssertionError(f"README command {line!r}: add it to SKIPPED or run it here")
        if words[:2] == ["cogrl", "train"] and self.resumed_later(words):
            self.outputs[line] = self.interrupt(argv, line)
        else:
            self.outputs[line] = self.run(argv, line)

    def placeholder(self, word: str) -> str:
        """``runs/NAME__<time>``: the one run folder so named."""
        if "<time>" not in word:
            return word
        found = sorted(self.folder.glob(word.replace("<time>", "*")))
        assert len(found) == 1, f"{word}: expected one run folder, found {found}"
        return str(found[0].relative_to(self.folder))

    def resumed_later(self, words: list[str]) -> bool:
        """Whether a later README command resumes the run these words start."""
        if "--resume" in words:
            return False
        env, agent = words[words.index("--env") + 1], words[words.index("--agent") + 1]
        seed = words[words.index("--seed") + 1] if "--seed" in words else "0"
        name = f"{re.sub(r'[^A-Za-z0-9._-]', '-', env)}__{agent}__{seed}__<time>"
        return any(
            f"--resume runs/{name}" in " ".join(c)
            for b in self.blocks
            if b.language == "bash"
            for c in commands(b.code)
        )

    def run(self, argv: list[str], what: str) -> str:
        start = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=self.folder,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        self.seconds[what] = time.perf_counter() - start
        assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr

    def interrupt(self, argv: list[str], what: str) -> str:
        """Run ``argv`` and press Ctrl-C once training has started: it stops after the
        update in progress, writes a checkpoint and exits with 130."""
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=self.folder, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        seen = b""
        deadline = time.monotonic() + (self.timeout or 3600)
        while b"step/s]" not in seen and b"%|" not in seen:  # tqdm's first bar
            chunk = process.stderr.read1(4096)
            assert chunk and time.monotonic() < deadline, f"{what}: no progress bar\n{seen!r}"
            seen += chunk
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=self.timeout)
        self.seconds[what] = time.perf_counter() - start
        assert process.returncode == 130, f"{what} after Ctrl-C: {process.returncode}\n{err!r}"
        return (out + seen + err).decode()


def test_the_readme_has_blocks_to_run() -> None:
    blocks = readme_blocks()
    assert {b.language for b in blocks} == {"python", "bash"}
    assert {"mycores.py", "guess.py", "guess_core.py"} <= {b.file for b in blocks}
    lines = [" ".join(words) for b in blocks if b.language == "bash" for words in commands(b.code)]
    assert any(line.startswith("cogrl train --resume runs/") for line in lines)
    assert "pip install -e .[dev]" in lines  # the set-up, in the order it runs
    setup = lines[: lines.index("pip install -e .[dev]") + 1]
    assert setup == [
        "python3 -m venv .venv",
        ". .venv/bin/activate",
        "pip install torch --index-url https://download.pytorch.org/whl/cpu",
        "pip install -e .[dev]",
    ]


def test_the_ci_script_sets_up_as_the_readme_says() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    for line in ("python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[dev]"'):
        assert line in ci.splitlines()
    assert ci.index("torch==") < ci.index('pip install -e ".[dev]"')  # CPU torch first


def test_small_substitutes_step_counts_only() -> None:
    assert small("agent.learn(total_timesteps=500_000, progress_bar=True)") == (
        "agent.learn(total_timesteps=2048, progress_bar=True)"
    )
    assert small("c.learn(50_000)  # acts\nr.train(2_000)") == "c.learn(2048)  # acts\nr.train(16)"
    assert small("PPO(...).learn(1000)") == "PPO(...).learn(1000)"
    train = ["cogrl", "train", "--env", "CartPole-v1", "--agent", "ppo"]
    assert small([*train, "--steps", "50000"]) == [*train, "--steps", "2048"]
    assert small(train) == [*train, "--steps", "2048"]
    assert small(["cogrl", "eval", "runs/x", "--episodes", "1000"]) == [
        "cogrl", "eval", "runs/x", "--episodes", "1000",
    ]  # fmt: skip


def test_commands_split_as_bash_does() -> None:
    code = "a b \\\n  c  # note\n\n# only a comment\nd 'e f' \"g\" && h\n"
    assert commands(code) == [["a", "b", "c"], ["d", "e f", "g"], ["h"]]


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Readme:
    return Readme(tmp_path_factory.mktemp("readme"), as_written=False)


@pytest.mark.parametrize("index", range(len(readme_blocks())), ids=[b.id for b in readme_blocks()])
def test_readme_block_runs(readme: Readme, index: int) -> None:
    """Each block in order, with small step counts (a failure may fail later blocks too)."""
    readme.run_block(readme.blocks[index])


@pytest.mark.learning
def test_the_readme_runs_as_written_and_reaches_what_it_says(tmp_path: Path) -> None:
    readme = Readme(tmp_path, as_written=True)
    try:
        for block in readme.blocks:
            readme.run_block(block)
    finally:  # what each took and printed last, for the README's figures (pytest -s)
        for line, seconds in readme.seconds.items():
            tail = readme.outputs.get(line, "").replace("\r", "\n").splitlines()[-4:]
            print(f"{seconds:8.1f} s  {line}\n" + "".join(f"           {t}\n" for t in tail))
    for fragment, (pattern, lowest) in CLAIMS.items():
        (line,) = [
            line
            for line in readme.outputs
            if fragment in line or fragment in readme.codes.get(line, "")
        ]
        values = re.findall(pattern, readme.outputs[line])
        assert values, f"{line}: no {pattern!r} in its output"
        worst = min(float(v) for v in values)  # every agent or run the output reports
        assert worst >= lowest, f"{line}: {worst} < {lowest}"
