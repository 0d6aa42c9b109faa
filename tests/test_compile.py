"""compile=True: learners under torch.compile give eager's results to float32 rounding, and
fall back to eager, with a warning that says why, where compiling cannot work."""

from __future__ import annotations

import copy
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
    # On the CPU the whole minibatch step (loss, gradients, clipping, Adam) is one function.
    assert set(compiled._compiled) == {"PPO's minibatch update", "the policy's step"}
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


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_compiler)])
@pytest.mark.parametrize(("weight_decay", "max_grad_norm"), [(0.0, 0.5), (0.1, None)])
def test_a_fused_update_steps_as_gradient_step_and_torchs_adam(
    compiled, weight_decay, max_grad_norm
) -> None:
    # fused_update's own Adam (AdamW with weight decay) and clipping against torch's fused
    # optimiser after training.gradient_step: three steps, a learning rate changed between
    # them (a schedule), an aux output holding None; then two steps in one call; then
    # torch's optimiser goes on from
    # the state the fused update left, as after a fallback or a resumed checkpoint. The
    # gradients come from torch.func rather than the autograd engine: equal to rounding,
    # which Adam's division by sqrt(v) enlarges where a gradient is near 0, hence 1e-4.
    from cogrl.agents.compiling import fused_update
    from cogrl.agents.training import adam, gradient_step

    def build():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        return net, adam(net.parameters(), lr=0.05, eps=1e-5, weight_decay=weight_decay)

    def loss_fn(net, x, y):
        loss = (net(x) - y).square().mean() * 10
        return loss, (loss.detach() * 2, None)

    x, y = torch.randn(16, 3), torch.randn(16, 2)
    net_a, opt_a = build()
    net_b, opt_b = build()
    wrap = (lambda f: Compiled(f, "the test's update", torch.device("cpu"))) if compiled else None
    update = fused_update(
        net_b,
        opt_b,
        lambda x, y: loss_fn(net_b, x, y),
        max_grad_norm,
        **({"wrap": wrap} if wrap else {}),
    )
    for lr in (0.05, 0.05, 0.02):
        for opt in (opt_a, opt_b):
            opt.param_groups[0]["lr"] = lr
        loss_a, (double_a, _) = loss_fn(net_a, x, y)
        norm_a = gradient_step(opt_a, loss_a, max_grad_norm)
        [(loss_b, (double_b, none), norm_b)] = update((x, y))
        assert none is None and not loss_b.requires_grad
        torch.testing.assert_close(loss_b, loss_a.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(double_b, double_a, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(norm_b, norm_a, rtol=1e-4, atol=1e-5)
        for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert float(opt_b.state[next(net_b.parameters())]["step"]) == 3
    x2, y2 = torch.randn(16, 3), torch.randn(16, 2)
    losses_a = []
    for xs, ys in ((x, y), (x2, y2)):
        loss_a = loss_fn(net_a, xs, ys)[0]
        losses_a.append(loss_a.detach())
        gradient_step(opt_a, loss_a, max_grad_norm)
    two = update((x, y), (x2, y2))
    torch.testing.assert_close([s[0] for s in two], losses_a, rtol=1e-4, atol=1e-5)
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    for opt, net in ((opt_a, net_a), (opt_b, net_b)):
        gradient_step(opt, loss_fn(net, x, y)[0], max_grad_norm)
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_a_fused_update_names_what_it_cannot_stand_in_for() -> None:
    from cogrl.agents.compiling import fused_update

    net = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="Adam and AdamW only, not SGD"):
        fused_update(net, torch.optim.SGD(net.parameters(), lr=0.1), lambda: None, None)
    with pytest.raises(ValueError, match="amsgrad=True"):
        fused_update(net, torch.optim.Adam(net.parameters(), amsgrad=True), lambda: None, None)
    net.bias.requires_grad_(False)
    with pytest.raises(ValueError, match="some are frozen"):
        fused_update(net, torch.optim.Adam(net.parameters()), lambda: None, None)
    net.bias.requires_grad_(True)
    other = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="must hold the module's parameters"):
        fused_update(net, torch.optim.Adam(other.parameters()), lambda: None, None)


@needs_compiler
def test_a_compiled_ppo_goes_on_from_a_loaded_training_state() -> None:
    # The fused minibatch update reads the optimiser's state at every call: after
    # load_training_state (a resumed checkpoint) it steps from the loaded moments, not from
    # the tensors it saw first.
    env = "cogrl/Copy-v0"  # its environments snapshot: the resumed run steps as the first
    a = make("ppo", env, seed=3, compile=True, **SMALL_PPO)
    a.learn(64)
    weights, state = parameters(a), copy.deepcopy(a.training_state())
    a.learn(64, reset_num_timesteps=False)
    b = make("ppo", env, seed=4, compile=True, **SMALL_PPO)
    b.learn(64)  # its own moments first, and its fused update made
    b.policy.load_state_dict(weights)
    b.load_training_state(state)
    b.learn(64, reset_num_timesteps=False)
    for key, value in parameters(a).items():
        torch.testing.assert_close(parameters(b)[key], value, rtol=1e-4, atol=1e-5)


@needs_compiler
def test_the_tanh_activation_is_torchs_eager_and_within_2e7_compiled() -> None:
    from cogrl.nn.encoders import Tanh

    x = torch.linspace(-40, 40, 20001, requires_grad=True)
    eager = Tanh()(x)
    assert torch.equal(eager, torch.tanh(x))
    compiled = torch.compile(Tanh())(x)
    torch.testing.assert_close(compiled, torch.tanh(x), rtol=0, atol=2e-7)
    (grad,) = torch.autograd.grad(compiled.sum(), x)
    (expected,) = torch.autograd.grad(torch.tanh(x).sum(), x)
    assert torch.isfinite(grad).all()  # no overflow far from 0
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-6)
