"""Per-environment hyperparameters, in the style of RL Zoo's hyperparameter files.

``cogrl train --env ID --agent NAME`` starts from ``preset(NAME, ID)`` (if there is one),
then applies ``--set`` overrides; ``cogrl train --no-preset`` uses the agent's plain
defaults. In a script::

    from cogrl.agents.presets import preset
    p = preset("dqn", "CartPole-v1")
    agent = cogrl.agents.make("dqn", "CartPole-v1", env_kwargs=p.env_kwargs, **p.hyperparameters)
    agent.learn(p.timesteps)

What each preset reaches within its ``timesteps`` is measured by ``benchmarks/presets.py``
and, for the memory tasks, ``benchmarks/memory_learning.py`` (BENCHMARKS.md); ``pytest -m
learning`` checks the CartPole, GlimpseDigits and StoryQA ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PRESETS", "Preset", "preset"]


@dataclass(frozen=True)
class Preset:
    """Hyperparameters, environment arguments and a training length for one agent and env."""

    hyperparameters: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    timesteps: int | None = None


# PPO on the memory tasks: 64 environments, rollouts of 64 steps, 4 epochs of 4
# minibatches, Adam at 1e-3, no entropy bonus, gamma 0 (see the comment at the tasks).
_MEMORY_PPO: dict[str, Any] = {
    "num_envs": 64,
    "n_steps": 64,
    "batch_size": 1024,
    "n_epochs": 4,
    "learning_rate": 1e-3,
    "gamma": 0.0,
    "gae_lambda": 0.0,
    "ent_coef": 0.0,
}
# The copy tasks learn from many small updates: 10 epochs of 512-step minibatches at 3e-3
# (with an LSTM on Copy lengths 1-2: 0.03 bits wrong per sequence after 131k steps, against
# 3.68 with 4 epochs of 1024 at 1e-3; BENCHMARKS.md, "Memory tasks"). Issue 20's credit
# assignment on top, measured with an LSTM on Copy lengths 1-5 at 131k steps
# (benchmarks/credit.py; BENCHMARKS.md, "Credit assignment on Copy"):
# - factored credit, one ratio and advantage per output bit: 0.94 bits wrong per
#   sequence against 5.5 for the scalar update (a value per bit: 1.53);
# - 256 environments: 0.70 at the same number of steps, in less wall time;
# - whole episodes: Copy's episodes (up to 41 steps at lengths 1-20) do not fit in a
#   64-step rollout (23% of its segments go on from the previous one), and cut there the
#   answer's gradient cannot reach the writes made before; replaying each unfinished
#   episode from its start gave 0.64 (against 0.70), for ~25% more time per step.
# Answer supervision (answer_coef=1, the NTM paper's training signal) gave 0.15: it is one
# --set away, not the default, which stays pure reinforcement.
_COPY_PPO: dict[str, Any] = {
    **_MEMORY_PPO,
    "num_envs": 256,
    "n_epochs": 10,
    "batch_size": 512,
    "learning_rate": 3e-3,
    "factored_credit": True,
    "whole_episodes": True,
}
# The NTM paper's copy-task machine: 128 x 20 memory, one read and one write head, an
# LSTM controller of 100 (as pytorch-ntm's), shared by actor and critic (an NTM per step
# costs ~10x an LSTM on the CPU; a second one for the critic would double it).
_NTM: dict[str, Any] = {
    "core": "ntm",
    "core_size": 100,
    "memory_size": 128,
    "memory_width": 20,
    "hidden_sizes": [64],
    "share_torso": True,
}

# CartPole-v1's PPO preset is RL Zoo's (n_steps 32 per env, batch 256, 20 epochs, gamma
# 0.98, GAE 0.8, lr 1e-3 annealed), with SB3's orthogonal initialisation and 16 envs.
PRESETS: dict[str, dict[str, Preset]] = {
    "ppo": {
        "CartPole-v1": Preset(
            {
                "num_envs": 16,
                "n_steps": 32,
                "batch_size": 256,
                "n_epochs": 20,
                "learning_rate": 1e-3,
                "anneal_lr": True,
                "gamma": 0.98,
                "gae_lambda": 0.8,
                "policy": {"ortho_init": True},
            },
            timesteps=200_000,
        ),
        # Discrete mode (look at a cell or answer): RAM's glimpse network and a GRU core.
        # Two epochs and a learning rate that decays to 0: with 4 epochs at a constant 1e-3
        # the policy reached ~94% by 65k steps, then drifted (0.80, 0.82 and 0.0 at 300k for
        # seeds 0-2; decay alone: 0.88, 0.94, 0.94; both: 0.94, 0.92, 0.92).
        "cogrl/GlimpseDigits-v0": Preset(
            {
                "num_envs": 256,
                "n_steps": 8,
                "batch_size": 512,
                "n_epochs": 2,
                "learning_rate": 1e-3,
                "anneal_lr": True,
                "gamma": 1.0,
                "ent_coef": 0.01,
                "policy": {
                    "encoder": "glimpse",
                    "core": "gru",
                    "hidden_sizes": [128],
                    "core_size": 128,
                    "activation": "relu",
                    "share_torso": True,
                },
            },
            env_kwargs={"action_mode": "discrete"},
            timesteps=300_000,
        ),
        # Visual search, discrete mode (look at or declare on a cell): the GlimpseDigits
        # preset with every observation key encoded (the cue included), 16-step rollouts and
        # gamma 0.99 for the saccade costs. 37% of MNIST test targets found (chance 25%)
        # after 2.56M steps (BENCHMARKS.md, "Attention on real MNIST", visual search).
        "cogrl/VisualSearch-v0": Preset(
            {
                "num_envs": 256,
                "n_steps": 16,
                "batch_size": 512,
                "n_epochs": 2,
                "learning_rate": 1e-3,
                "anneal_lr": True,
                "gamma": 0.99,
                "ent_coef": 0.01,
                "policy": {
                    "encoder": "auto",
                    "core": "gru",
                    "hidden_sizes": [128],
                    "core_size": 128,
                    "activation": "relu",
                    "share_torso": True,
                },
            },
            env_kwargs={"action_mode": "discrete"},
            timesteps=2_500_000,
        ),
        # The memory tasks: an action changes neither later observations nor later rewards
        # (copy: the output of a step is scored at that step; story QA and delayed recall:
        # only the answer is scored), so the return-to-go beyond a step's own reward is
        # noise to its action. gamma = 0 drops it: the advantage is r_t - V(s_t).
        "cogrl/Copy-v0": Preset({**_COPY_PPO, "policy": _NTM}, timesteps=2_000_000),
        "cogrl/RepeatCopy-v0": Preset({**_COPY_PPO, "policy": _NTM}, timesteps=2_000_000),
        "cogrl/AssociativeRecall-v0": Preset({**_COPY_PPO, "policy": _NTM}, timesteps=2_000_000),
        # MemN2N over position-encoded sentences (Sukhbaatar et al. 2015: PE, temporal
        # encoding, 3 hops, adjacent tying); 64-wide embeddings.
        "cogrl/StoryQA-v0": Preset(
            {
                **_MEMORY_PPO,
                "n_steps": 32,
                "batch_size": 512,
                "policy": {
                    "encoder": "bow",
                    "core": "memn2n",
                    "core_size": 64,
                    "hidden_sizes": [64],
                },
            },
            env_kwargs={"task": 1},
            timesteps=500_000,
        ),
        # Scanpaths: fixations on the 6 x 8 grid (a categorical policy explores distinct
        # places; the Gaussian one's mean stays where it starts), the CNN over the foveated
        # image and working memory; gamma 0.9 over a 9-fixation episode. What it reaches in
        # 300k steps on OSIE: BENCHMARKS.md, "Scanpaths on OSIE".
        "cogrl/Scanpath-v0": Preset(
            {
                "num_envs": 32,
                "n_steps": 36,
                "batch_size": 288,
                "n_epochs": 4,
                "learning_rate": 3e-4,
                "gamma": 0.9,
                "gae_lambda": 0.95,
                "ent_coef": 0.01,
            },
            env_kwargs={"action_mode": "discrete"},
            timesteps=300_000,
        ),
        "cogrl/DelayedRecall-v0": Preset(
            {
                **_MEMORY_PPO,
                "n_steps": 16,
                "batch_size": 256,
                "policy": {"core": "lstm", "core_size": 64, "hidden_sizes": [64]},
            },
            timesteps=100_000,
        ),
    },
    "a2c": {
        "CartPole-v1": Preset({"num_envs": 16, "n_steps": 8}, timesteps=200_000),
    },
    "dqn": {
        "CartPole-v1": Preset(
            {
                "num_envs": 16,
                "learning_rate": 1e-3,
                "anneal_lr": True,
                "batch_size": 128,
                "buffer_size": 50_000,
                "learning_starts": 1_000,
                "train_freq": 16,
                "gradient_steps": 2,
                "target_update_interval": 1_000,
                "double_q": True,
                "exploration_fraction": 0.1,
                "exploration_final_eps": 0.02,
            },
            timesteps=200_000,
        ),
        # Feedforward, on RAM's glimpse network: on these centred digits the first glimpse
        # (the canvas centre) holds enough to answer, and a recurrent Q-network costs several
        # times more per step.
        "cogrl/GlimpseDigits-v0": Preset(
            {
                "num_envs": 64,
                "policy": {"encoder": "glimpse", "hidden_sizes": [128, 128]},
                "learning_rate": 5e-4,
                "batch_size": 256,
                "buffer_size": 100_000,
                "learning_starts": 5_000,
                "train_freq": 64,
                "gradient_steps": 1,
                "target_update_interval": 2_000,
                "gamma": 0.9,
                "exploration_fraction": 0.1,
                "exploration_final_eps": 0.02,
                "double_q": True,
            },
            env_kwargs={"action_mode": "discrete"},
            timesteps=300_000,
        ),
    },
    # RAM on 28 x 28 digits (the README's main job): the first glimpse at a random place.
    # From the centre, which already shows the digit, RAM reads the class there and its
    # later glimpses drift off the ink (1M steps: 95.7% test accuracy, 25% of its chosen
    # glimpses on the digit's ink box); from a random start it must find the digit (1M:
    # 89.7%, 98% on the digit; 2M: 94.6%, 99.9%). Seed 0, 1,000 test episodes, scikit-learn's
    # digits (BENCHMARKS.md, "Where RAM looks on the main job"). The benchmarks' RAM tables
    # keep the paper's centre start (they make the agent without a preset).
    "ram": {
        "cogrl/GlimpseDigits-v0": Preset(
            env_kwargs={"first_glimpse": "random"}, timesteps=2_000_000
        ),
    },
    "reinforce": {
        "CartPole-v1": Preset({"num_envs": 16}, timesteps=200_000),
    },
    # The whole-image baselines (--set model=fc|cnn|stn|soft; the RAM paper's CNN by
    # default). Discrete mode: the answer ends the episode, one step per image, where the
    # continuous mode steps every episode n_glimpses times for the same image.
    "classifier": {
        env_id: Preset(env_kwargs={"action_mode": "discrete"}, timesteps=steps)
        for env_id, steps in (
            ("cogrl/GlimpseDigits-v0", 100_000),
            ("cogrl/TranslatedDigits-v0", 500_000),
            ("cogrl/ClutteredDigits-v0", 500_000),
        )
    },
}


def preset(agent: str, env_id: str) -> Preset:
    """The preset of ``agent`` on ``env_id`` (a copy), or an empty one: the plain defaults."""
    found = PRESETS.get(agent, {}).get(env_id)
    return copy.deepcopy(found) if found is not None else Preset()
