"""compile=True: learners under torch.compile give eager's results to float32 rounding, and
fall back to eager, with a warning that says why, where compiling cannot work."""

from __future__ import annotations

import warnings

import pytest
import torch

from cogrl import runner
from cogrl.agents import make
from cogrl.agents.compiling import Compiled, compile_unavailable

SMALL_PPO = {"num_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 2}

needs_compiler = pytest.mark.skipif(
    compile_unavailable(torch.device("cpu")) is not None,
    reason=f"torch.compile cannot run here: {compile_unavailable(torch.device('cpu'))}",
)


def parameters(agent) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in agent.policy.state_dict().items()}


@needs_compiler
def test_compiled_ppo_learns_what_eager_ppo_learns() -> None:
    # Two updates (a rollout each, four minibatches each) from the same seed. Inductor may
    # fuse and reorder float32 arithmetic, so the weights agree to rounding, not bit for bit;
    # the sampled actions (uniforms against probabilities) are the same.
    eager = make("ppo", "CartPole-v1", seed=3, **SMALL_PPO)
    compiled = make("ppo", "CartPole-v1", seed=3, compile=True, **SMALL_PPO)
    assert compiled.compile and not eager.compile
    before = parameters(eager)
    eager.learn(128)
    compiled.learn(128)
    assert all(c.active for c in compiled._compiled.values())
    assert set(compiled._compiled) == {"PPO's minibatch loss", "the policy's step"}
    moved = max((parameters(eager)[k] - before[k]).abs().max() for k in before)
    assert moved > 1e-3  # the updates did change the weights
    for key, value in parameters(eager).items():
        torch.testing.assert_close(parameters(compiled)[key], value, rtol=1e-4, atol=1e-5)
    assert eager.num_timesteps == compiled.num_timesteps == 128


@needs_compiler
@pytest.mark.parametrize(
    "algo, env_id, hyperparameters, steps",
    [
        ("a2c", "CartPole-v1", {"num_envs": 4, "n_steps": 8}, 96),
        ("ram", "cogrl/GlimpseDigits-v0", {"num_envs": 16}, 16 * 6 * 3),
    ],
)
def test_compiled_a2c_and_ram_learn_what_eager_learns(algo, env_id, hyperparameters, steps) -> None:
    eager = make(algo, env_id, seed=5, **hyperparameters)
    compiled = make(algo, env_id, seed=5, compile=True, **hyperparameters)
    # On the CPU their losses and steps run slower compiled, so compile=True leaves them
    # eager there; everywhere=True compiles them anyway (what a GPU does).
    compiled.use_compile(True, everywhere=True)
    eager.learn(steps)
    compiled.learn(steps)
    assert compiled._compiled and all(c.active for c in compiled._compiled.values())
    for key, value in parameters(eager).items():
        torch.testing.assert_close(parameters(compiled)[key], value, rtol=1e-4, atol=1e-5)


def test_compile_without_a_cpp_compiler_warns_and_trains_eagerly() -> None:
    from torch._inductor import config

    expected = "C\\+\\+ compiler.*no-such-compiler-here.*eagerly"
    with (
        config.patch({"cpp.cxx": ("no-such-compiler-here",)}),
        pytest.warns(RuntimeWarning, match=expected),
    ):
        agent = make("ppo", "CartPole-v1", seed=0, compile=True, **SMALL_PPO)
    assert agent.compile is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        agent.learn(64)
    assert agent.num_timesteps == 64


def test_a_compile_that_fails_warns_once_and_runs_eagerly() -> None:
    def broken_backend(graph, example_inputs):
        raise RuntimeError("this backend cannot compile")

    calls = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x * 2

    fn = Compiled(double, "the doubling", torch.device("cpu"), backend=broken_backend)
    with pytest.warns(RuntimeWarning, match="compiling the doubling failed.*cannot compile"):
        out = fn(torch.ones(3))
    assert torch.equal(out, torch.full((3,), 2.0)) and not fn.active
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(fn(torch.ones(2)), torch.full((2,), 2.0))


def test_errors_of_the_compiled_function_itself_pass_through() -> None:
    def check(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("x must be positive, got -1")

    fn = Compiled(check, "the check", torch.device("cpu"), backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="x must be positive, got -1"):
            fn(torch.ones(1))
    assert fn.active  # not taken for a failure to compile


def test_on_the_cpu_compile_leaves_eager_what_runs_slower_compiled() -> None:
    agent = make("ram", "cogrl/GlimpseDigits-v0", seed=0, compile=True, num_envs=8)
    agent.learn(8 * 6)
    assert "RAM's step" not in agent._compiled


def test_compile_must_be_a_bool_and_a_run_records_it() -> None:
    with pytest.raises(ValueError, match="compile must be True or False, got 'yes'"):
        make("ppo", "CartPole-v1", compile="yes")
    spec = runner.RunSpec(env="CartPole-v1", agent="ppo", compile=True, hyperparameters=SMALL_PPO)
    agent = runner.build_agent(spec)
    assert agent.compile == (compile_unavailable(torch.device("cpu")) is None)
    assert agent.describe()["compile"] == agent.compile
