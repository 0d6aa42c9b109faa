"""Fingerprints of learners' weights after short, seeded trainings: a refactor that keeps
behaviour keeps every fingerprint (CPU, one thread).

    python benchmarks/fingerprints.py

Each line: learner, environment, the settings given, and the first 16 hex digits of a
SHA-256 over the trained weights' values (by parameter name, with RAM's ``torso.`` prefix
dropped so that names from before issue 7 compare, and the GRU/LSTM cores' ``nn.GRU``
names written as the ``GRUCell`` names they had before issue 8).
"""

from __future__ import annotations

import hashlib

import torch

import cogrl.agents as A

GLIMPSE = "cogrl/GlimpseDigits-v0"
CASES = [
    ("ppo", "CartPole-v1", {}, {}, 4096),
    ("ppo", "CartPole-v1", {"policy": {"core": "gru"}}, {}, 2048),
    (
        "ppo",
        GLIMPSE,
        {
            "num_envs": 64,
            "n_steps": 8,
            "batch_size": 128,
            "policy": {"core": "gru", "hidden_sizes": [64], "encoder": "glimpse"},
        },
        {"action_mode": "discrete"},
        4096,
    ),
    ("a2c", "CartPole-v1", {}, {}, 4096),
    ("dqn", "CartPole-v1", {"learning_starts": 500}, {}, 3000),
    ("dqn", "CartPole-v1", {"learning_starts": 500, "policy": {"core": "gru"}}, {}, 1500),
    ("reinforce", "CartPole-v1", {}, {}, 4096),
    ("ram", GLIMPSE, {"num_envs": 32}, {}, 4096),
    ("a2c", "cogrl/Copy-v0", {"policy": {"core": "lstm"}}, {"max_length": 3}, 2048),
    (
        "ppo",
        "cogrl/Copy-v0",
        {
            "num_envs": 16,
            "n_steps": 16,
            "batch_size": 128,
            "gamma": 0.0,
            "policy": {"core": "ntm", "core_size": 32, "memory_size": 16, "memory_width": 8},
        },
        {"max_length": 3},
        1024,
    ),
    ("reinforce", "cogrl/DelayedRecall-v0", {"baseline": "mean"}, {}, 2048),
    ("dram", "cogrl/MultiDigits-v0", {"num_envs": 16}, {}, 2048),
]


def old_name(key: str) -> str:
    key = key.replace("torso.", "")
    for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        key = key.replace(f"rnn.{part}_l0", f"cell.{part}")
    return key


def fingerprint(agent: A.Agent) -> str:
    h = hashlib.sha256()
    for name, module in sorted(agent.modules().items()):
        items = ((old_name(k), v) for k, v in module.state_dict().items())
        for key, value in sorted(items):
            h.update(f"{name}.{key}".encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    torch.set_num_threads(1)
    for name, env, hyperparameters, env_kwargs, steps in CASES:
        agent = A.make(name, env, device="cpu", seed=3, env_kwargs=env_kwargs, **hyperparameters)
        agent.learn(steps)
        print(name, env, sorted(hyperparameters), fingerprint(agent), flush=True)


if __name__ == "__main__":
    main()
