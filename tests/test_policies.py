"""Tests for the policy parts in cogrl.nn, chosen by space: encoders, action heads, torsos and
the composed actor-critic and Q policies. (The contracts every part shares, such as recurrent
state, the core registry, PolicyConfig and the action-head API, are in test_nn.py.)"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical, Independent, Normal

from cogrl.nn import (
    ActorCriticPolicy,
    BernoulliHead,
    CategoricalHead,
    CNNEncoder,
    DictEncoder,
    EmbeddingEncoder,
    GaussianHead,
    GlimpseNetwork,
    MLPEncoder,
    MultiCategoricalHead,
    PolicyConfig,
    QNetwork,
    build_encoder,
    make_action_head,
    make_encoder,
    make_torso,
    map_state,
)
from cogrl.nn.encoders import glimpse_network


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def assert_states_close(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_states_close(x, y)
    else:
        torch.testing.assert_close(a, b)


def random_state(state):
    return map_state(torch.randn_like, state)


# ---------------------------------------------------------------------------------------
# Encoders


def test_flat_box_gets_an_mlp_of_the_requested_sizes():
    encoder = make_encoder(spaces.Box(-1, 1, (7,)), output_size=16)
    assert isinstance(encoder, MLPEncoder)
    assert encoder(torch.randn(3, 7)).shape == (3, encoder.output_size) == (3, 16)

    deeper = make_encoder(spaces.Box(-1, 1, (7,)), output_size=16, hidden_sizes=(8, 5))
    assert deeper.output_size == 5
    assert deeper(torch.randn(3, 7)).shape == (3, 5)


def test_multibinary_gets_an_mlp_over_all_bits():
    space = spaces.MultiBinary([2, 3])
    encoder = make_encoder(space, output_size=16)
    assert isinstance(encoder, MLPEncoder)
    obs = torch.as_tensor(np.stack([space.sample() for _ in range(4)]))
    assert obs.dtype == torch.int8
    assert encoder(obs).shape == (4, 16)


@pytest.mark.parametrize("shape", [(3, 8, 8), (4, 36, 40)])
def test_image_encoder_reads_channels_first_and_last_alike(shape):
    c, h, w = shape
    first = make_encoder(spaces.Box(0, 1, (c, h, w)), output_size=24)
    last = make_encoder(spaces.Box(0, 1, (h, w, c)), output_size=24)
    assert isinstance(first, CNNEncoder) and isinstance(last, CNNEncoder)
    last.load_state_dict(first.state_dict())  # same layers: channels are found in both
    images = torch.rand(2, c, h, w)
    out = first(images)
    assert out.shape == (2, first.output_size) == (2, 24)
    torch.testing.assert_close(last(images.permute(0, 2, 3, 1)), out)


def test_uint8_images_are_scaled_to_unit_range():
    as_bytes = make_encoder(spaces.Box(0, 255, (8, 8, 3), dtype=np.uint8), output_size=16)
    as_floats = make_encoder(spaces.Box(0.0, 1.0, (8, 8, 3), dtype=np.float32), output_size=16)
    as_floats.load_state_dict(as_bytes.state_dict())
    pixels = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    torch.testing.assert_close(as_bytes(pixels), as_floats(pixels.float() / 255.0))


def test_discrete_with_a_start_embeds_each_value_to_its_own_row():
    encoder = make_encoder(spaces.Discrete(5, start=3), output_size=6)
    assert isinstance(encoder, EmbeddingEncoder) and encoder.output_size == 6
    out = encoder(torch.arange(3, 8))
    assert out.shape == (5, 6)
    torch.testing.assert_close(out, encoder.embedding.weight)


@pytest.mark.parametrize("start", [None, [-1, 2, 0]])
def test_multidiscrete_concatenates_one_embedding_per_position(start):
    space = spaces.MultiDiscrete([2, 3, 4], start=start)
    encoder = make_encoder(space, output_size=4)
    assert isinstance(encoder, EmbeddingEncoder) and encoder.output_size == 12
    obs = np.stack(
        [space.sample() for _ in range(16)] + [space.start, space.start + space.nvec - 1]
    )
    out = encoder(torch.as_tensor(obs))
    assert out.shape == (18, 12)
    # Position i's values index rows offset by the sizes of the positions before it.
    table = encoder.embedding.weight
    rows = torch.as_tensor(obs - space.start + np.array([0, 2, 5]))
    torch.testing.assert_close(out, table[rows].flatten(1))


def test_dict_concatenates_its_entries_in_sorted_key_order():
    # An OrderedDict keeps its (unsorted) order in the space; the encoder sorts anyway.
    space = spaces.Dict(
        OrderedDict(
            vec=spaces.Box(-1, 1, (5,)),
            image=spaces.Box(0, 255, (8, 8, 3), dtype=np.uint8),
            token=spaces.Discrete(4, start=1),
        )
    )
    assert list(space.spaces) == ["vec", "image", "token"]
    encoder = make_encoder(space, output_size=16)
    assert isinstance(encoder, DictEncoder)
    parts = encoder.encoders
    assert list(parts) == ["image", "token", "vec"]
    assert isinstance(parts["image"], CNNEncoder)
    assert isinstance(parts["token"], EmbeddingEncoder)
    assert isinstance(parts["vec"], MLPEncoder)
    obs = {
        "vec": torch.randn(3, 5),
        "image": torch.randint(0, 256, (3, 8, 8, 3), dtype=torch.uint8),
        "token": torch.tensor([1, 2, 4]),
    }
    out = encoder(obs)
    assert out.shape == (3, encoder.output_size) == (3, 48)
    expected = torch.cat([parts[k](obs[k]) for k in ["image", "token", "vec"]], -1)
    torch.testing.assert_close(out, expected)


GLIMPSE_SPACE = spaces.Dict(
    {"glimpse": spaces.Box(0, 1, (64,)), "location": spaces.Box(-1, 1, (3,))}
)


def test_a_glimpse_dict_is_encoded_key_by_key_unless_the_glimpse_network_is_asked_for():
    # make_encoder goes by the spaces alone, not by key names.
    encoder = make_encoder(GLIMPSE_SPACE, output_size=16)
    assert isinstance(encoder, DictEncoder)
    assert list(encoder.encoders) == ["glimpse", "location"]
    assert all(isinstance(e, MLPEncoder) for e in encoder.encoders.values())
    obs = {"glimpse": torch.rand(5, 64), "location": torch.rand(5, 3) * 2 - 1}
    assert encoder(obs).shape == (5, 32)


def test_glimpse_network_combines_the_glimpse_and_its_location():
    encoder = glimpse_network(GLIMPSE_SPACE, output_size=32, glimpse_hidden=12, location_hidden=6)
    assert isinstance(encoder, GlimpseNetwork)
    assert encoder.glimpse_fc.out_features == 12 and encoder.location_fc.out_features == 6
    obs = {"glimpse": torch.rand(5, 64), "location": torch.rand(5, 3) * 2 - 1}
    g = encoder(obs)
    assert g.shape == (5, encoder.output_size) == (5, 32)
    assert bool((g >= 0).all())
    # The location matters: the same glimpse seen elsewhere gives another feature.
    moved = encoder({"glimpse": obs["glimpse"], "location": -obs["location"]})
    assert not torch.allclose(moved, g)


def test_the_glimpse_encoder_by_name_follows_the_policy_config():
    config = PolicyConfig(
        encoder="glimpse", hidden_sizes=[24], glimpse_hidden=10, location_hidden=7
    )
    encoder = build_encoder("glimpse", GLIMPSE_SPACE, config)
    assert isinstance(encoder, GlimpseNetwork)
    assert encoder.output_size == 24  # hidden_sizes[-1] is the glimpse feature's width
    assert encoder.glimpse_fc.out_features == 10 and encoder.location_fc.out_features == 7
    assert isinstance(build_encoder("auto", GLIMPSE_SPACE, config), DictEncoder)
    with pytest.raises(ValueError, match="unknown encoder 'nope'"):
        build_encoder("nope", GLIMPSE_SPACE, config)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1, 1, (5,)),
        spaces.Dict({"glimpse": spaces.Box(0, 1, (9,))}),
        spaces.Dict({"glimpse": spaces.Box(0, 1, (3, 3, 1)), "location": spaces.Box(-1, 1, (2,))}),
    ],
    ids=["box", "no-location", "image-glimpse"],
)
def test_glimpse_network_rejects_other_spaces_naming_the_space(space):
    with pytest.raises(ValueError, match=re.escape(str(space))):
        glimpse_network(space)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Text(5),
        spaces.Box(0, 1, (4, 4)),
        spaces.Box(0, 1, (1, 2, 3, 4)),
        spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))),
    ],
    ids=["text", "box2d", "box4d", "tuple"],
)
def test_unsupported_observation_spaces_raise_naming_the_space(space):
    with pytest.raises(ValueError, match=re.escape(str(space))):
        make_encoder(space)
    # Also when nested in a Dict.
    with pytest.raises(ValueError, match=re.escape(str(space))):
        make_encoder(spaces.Dict({"ok": spaces.Box(-1, 1, (2,)), "bad": space}))


# ---------------------------------------------------------------------------------------
# Action heads

ACTION_SPACES = [
    spaces.Discrete(4, start=3),
    spaces.MultiDiscrete([2, 3, 4]),
    spaces.MultiDiscrete([[2, 3], [4, 5]]),
    spaces.MultiBinary(5),
    spaces.MultiBinary([2, 3]),
    spaces.Box(-np.inf, np.inf, (3,)),
    spaces.Box(-1, 1, (2, 2)),
]
ACTION_IDS = ["discrete", "multidiscrete", "multidiscrete2d", "multibinary", "multibinary2d"]
ACTION_IDS += ["box", "box2d"]
HEAD_TYPES = [CategoricalHead, MultiCategoricalHead, MultiCategoricalHead]
HEAD_TYPES += [BernoulliHead, BernoulliHead, GaussianHead, GaussianHead]


def params_for(head, batch=(16,), scale=2.0):
    """Random distribution parameters of ``head`` for a batch of shape ``batch``."""
    size = head.fc.out_features
    return scale * torch.randn(*batch, size)


@pytest.mark.parametrize(
    ("space", "head_type"), list(zip(ACTION_SPACES, HEAD_TYPES, strict=True)), ids=ACTION_IDS
)
def test_make_action_head_picks_the_head_for_the_space(space, head_type):
    assert type(make_action_head(space, 8)) is head_type


@pytest.mark.parametrize("space", ACTION_SPACES, ids=ACTION_IDS)
def test_sampled_and_modal_actions_lie_in_the_space(space):
    head = make_action_head(space, 8)
    params = head(torch.randn(32, 8)) * 3
    sample = head.sample(params)
    assert not sample.requires_grad  # a sample is data, not a function of the parameters
    for actions in (sample, head.mode(params)):
        assert actions.shape == (32, *space.shape)
        # to_env gives the action as the environment takes it (Gaussian samples are
        # unbounded: it clips them to the bounds; the learner keeps the unclipped sample).
        env_actions = head.to_env(actions)
        assert env_actions.shape == actions.shape
        for action in env_actions.detach().numpy():
            assert space.contains(action), (space, action)


@pytest.mark.parametrize("space", ACTION_SPACES, ids=ACTION_IDS)
def test_sampling_with_a_seeded_generator_is_reproducible(space):
    head = make_action_head(space, 8)
    params = params_for(head, (64,), scale=0.5)
    first = head.sample(params, torch.Generator().manual_seed(7))
    again = head.sample(params, torch.Generator().manual_seed(7))
    other = head.sample(params, torch.Generator().manual_seed(8))
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)


def reference_distribution(head, params):
    """The torch.distributions equivalent of ``head`` at ``params`` (batch event shape)."""
    if isinstance(head, CategoricalHead):
        return Categorical(logits=params)
    if isinstance(head, BernoulliHead):
        return Independent(Bernoulli(logits=params), 1)
    if isinstance(head, GaussianHead):
        return Independent(Normal(params, head.log_std.exp().expand_as(params)), 1)
    raise TypeError(head)


@pytest.mark.parametrize("batch", [(16,), (5, 3)], ids=["B", "TxB"])
@pytest.mark.parametrize(
    "space",
    [spaces.Discrete(5, start=3), spaces.MultiBinary([2, 3]), spaces.Box(-1, 1, (2, 3))],
    ids=["discrete", "multibinary", "box"],
)
def test_log_prob_and_entropy_match_torch_distributions(space, batch):
    head = make_action_head(space, 8)
    if isinstance(head, GaussianHead):
        with torch.no_grad():
            head.log_std.copy_(torch.randn_like(head.log_std))
    params = params_for(head, batch)
    dist = reference_distribution(head, params)
    raw = dist.sample()  # in the head's flat parameterisation
    if isinstance(head, CategoricalHead):
        action = raw + space.start
    else:
        action = raw.reshape(*batch, *space.shape)
        if isinstance(head, BernoulliHead):
            action = action.to(torch.int8)
    torch.testing.assert_close(head.log_prob(params, action), dist.log_prob(raw))
    torch.testing.assert_close(head.entropy(params), dist.entropy())
    assert head.entropy(params).shape == batch


@pytest.mark.parametrize("batch", [(16,), (5, 3)], ids=["B", "TxB"])
def test_multicategorical_is_independent_categoricals(batch):
    space = spaces.MultiDiscrete([[2, 3], [4, 5]])
    head = make_action_head(space, 8)
    params = params_for(head, batch)
    dists = [Categorical(logits=p) for p in torch.split(params, [2, 3, 4, 5], -1)]
    raw = torch.stack([d.sample() for d in dists], -1)
    action = raw.reshape(*batch, 2, 2)
    expected_log_prob = sum(d.log_prob(raw[..., i]) for i, d in enumerate(dists))
    torch.testing.assert_close(head.log_prob(params, action), expected_log_prob)
    torch.testing.assert_close(head.entropy(params), sum(d.entropy() for d in dists))
    modes = torch.stack([d.logits.argmax(-1) for d in dists], -1).reshape(*batch, 2, 2)
    torch.testing.assert_close(head.mode(params), modes)


def test_mode_is_the_most_likely_action():
    params = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    categorical = make_action_head(spaces.Discrete(3, start=3), 4)
    torch.testing.assert_close(categorical.mode(params), torch.tensor([4, 3]))

    bernoulli = make_action_head(spaces.MultiBinary(3), 4)
    expected = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.int8)
    torch.testing.assert_close(bernoulli.mode(params - torch.tensor([0.0, 0.0, 0.3])), expected)

    gaussian = make_action_head(spaces.Box(-1, 1, (3,)), 4)
    torch.testing.assert_close(gaussian.mode(params), params)


def test_categorical_samples_follow_the_softmax():
    head = make_action_head(spaces.Discrete(4, start=3), 8)
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    actions = head.sample(logits.expand(20_000, 4), torch.Generator().manual_seed(0))
    assert int(actions.min()) >= 3 and int(actions.max()) <= 6
    frequencies = torch.bincount(actions - 3, minlength=4).float() / actions.numel()
    torch.testing.assert_close(frequencies, torch.softmax(logits, -1), atol=0.015, rtol=0)


def test_gaussian_samples_have_the_learned_std():
    head = make_action_head(spaces.Box(-1, 1, (2,)), 8)
    with torch.no_grad():
        head.log_std.copy_(torch.tensor([-1.0, 0.5]))
    mean = torch.tensor([0.3, -2.0])
    samples = head.sample(mean.expand(20_000, 2), torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(samples.std(0), head.log_std.exp().detach(), atol=0, rtol=0.05)


@pytest.mark.parametrize(
    "space",
    [spaces.MultiDiscrete([2, 3], start=[1, 0]), spaces.Text(4), spaces.Dict({})],
    ids=["multidiscrete_start", "text", "dict"],
)
def test_unsupported_action_spaces_raise_naming_the_space(space):
    with pytest.raises(ValueError, match=re.escape(str(space))):
        make_action_head(space, 8)


# ---------------------------------------------------------------------------------------
# Torsos: sequences and steps

GLIMPSE_TORSO_SPACE = spaces.Dict(
    {"glimpse": spaces.Box(0, 1, (9,)), "location": spaces.Box(-1, 1, (2,))}
)
# (observation space, policy.encoder, the encoder it gives): a flat Box, RAM's glimpse
# network, and the same Dict encoded key by key.
TORSO_SPACES = {
    "box": (spaces.Box(-1, 1, (5,)), "auto", MLPEncoder),
    "glimpse": (GLIMPSE_TORSO_SPACE, "glimpse", GlimpseNetwork),
    "dict": (GLIMPSE_TORSO_SPACE, "auto", DictEncoder),
}


def small_torso(space, core, encoder="auto"):
    config = PolicyConfig(encoder=encoder, core=core, hidden_sizes=[16], core_size=12)
    return make_torso(space, config)


def random_obs(space, *batch):
    if isinstance(space, spaces.Dict):
        return {k: random_obs(s, *batch) for k, s in space.spaces.items()}
    return torch.rand(*batch, *space.shape) * 2 - 1


def index_obs(obs, index):
    if isinstance(obs, dict):
        return {k: v[index] for k, v in obs.items()}
    return obs[index]


@pytest.mark.parametrize("obs_kind", list(TORSO_SPACES))
@pytest.mark.parametrize("core", ["none", "rnn", "gru", "lstm"])
def test_sequence_equals_stepping_one_step_at_a_time(core, obs_kind):
    space, encoder, encoder_type = TORSO_SPACES[obs_kind]
    torso = small_torso(space, core, encoder)
    assert isinstance(torso.encoder, encoder_type)
    assert torso.recurrent == (core != "none")
    T, B = 6, 4
    obs = random_obs(space, T, B)
    episode_start = torch.rand(T, B) < 0.3
    episode_start[0, 0], episode_start[0, 1] = True, False
    state = random_state(torso.initial_state(B))

    h_seq, state_seq = torso.sequence(obs, state, episode_start)

    hs, stepped = [], state
    for t in range(T):
        h, stepped = torso.step(index_obs(obs, t), stepped, episode_start[t])
        hs.append(h)
    assert h_seq.shape == (T, B, torso.hidden_size)
    torch.testing.assert_close(h_seq, torch.stack(hs))
    assert_states_close(state_seq, stepped)


@pytest.mark.parametrize("core", ["rnn", "gru", "lstm"])
def test_sequence_restarts_the_state_at_episode_starts(core):
    space = spaces.Box(-1, 1, (5,))
    torso = small_torso(space, core)
    T, B = 6, 3
    obs = random_obs(space, T, B)
    episode_start = torch.zeros(T, B, dtype=torch.bool)
    episode_start[3, 1] = True  # env 1 starts an episode mid-sequence
    episode_start[0, 2] = True  # env 2 starts one at the first step
    carried = random_state(torso.initial_state(B))

    h, _ = torso.sequence(obs, carried, episode_start)

    no_start = torch.zeros(T, B, dtype=torch.bool)
    fresh_from_0, _ = torso.sequence(obs, torso.initial_state(B), no_start)
    fresh_from_3, _ = torso.sequence(obs[3:], torso.initial_state(B), no_start[3:])
    torch.testing.assert_close(h[3:, 1], fresh_from_3[:, 1])
    torch.testing.assert_close(h[:, 2], fresh_from_0[:, 2])
    # Without a start the carried state matters.
    assert not torch.allclose(h[:, 0], fresh_from_0[:, 0])
    assert not torch.allclose(h[:3, 1], fresh_from_0[:3, 1])


# ---------------------------------------------------------------------------------------
# Composed policies


def state_shapes(state):
    return map_state(lambda s: tuple(s.shape), state)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
@pytest.mark.parametrize("core", ["none", "gru", "lstm"])
@pytest.mark.parametrize("share_torso", [True, False])
def test_actor_critic_shapes_and_state(share_torso, core, action_space):
    obs_space = spaces.Box(-1, 1, (5,))
    config = PolicyConfig(core=core, hidden_sizes=[16], core_size=12, share_torso=share_torso)
    policy = ActorCriticPolicy(obs_space, action_space, config)
    B, T = 4, 3
    n = 3 if isinstance(action_space, spaces.Discrete) else 2
    state = policy.initial_state(B)
    actor_state, critic_state = state
    assert state_shapes(actor_state) == state_shapes(policy.actor_torso.initial_state(B))
    if share_torso:
        assert policy.critic_torso is None and critic_state.shape == (B, 0)
    else:
        assert state_shapes(critic_state) == state_shapes(actor_state)

    params, values, next_state = policy.step(random_obs(obs_space, B), state)
    assert params.shape == (B, n) and values.shape == (B,)
    assert state_shapes(next_state) == state_shapes(state)

    starts = torch.zeros(T, B, dtype=torch.bool)
    params, values, last_state = policy.sequence(random_obs(obs_space, T, B), state, starts)
    assert params.shape == (T, B, n) and values.shape == (T, B)
    assert state_shapes(last_state) == state_shapes(state)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
@pytest.mark.parametrize("core", ["none", "rnn", "lstm"])
@pytest.mark.parametrize("share_torso", [True, False])
def test_actor_critic_gradients_reach_every_parameter(share_torso, core, action_space):
    obs_space = spaces.Box(-1, 1, (5,))
    policy = ActorCriticPolicy(
        obs_space,
        action_space,
        core=core,
        hidden_sizes=(16,),
        core_size=12,
        share_torso=share_torso,
    )
    T, B = 3, 4
    state = random_state(policy.initial_state(B))
    starts = torch.zeros(T, B, dtype=torch.bool)
    params, values, _ = policy.sequence(random_obs(obs_space, T, B), state, starts)
    head = policy.action_head
    action = head.sample(params.detach().flatten(0, 1))
    loss = -head.log_prob(params.flatten(0, 1), action).mean() + values.pow(2).mean()
    loss.backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_policy_settings_given_as_keywords_go_over_the_config():
    obs_space = spaces.Box(-1, 1, (5,))
    base = PolicyConfig(core="gru", hidden_sizes=[16], core_size=12)
    policy = ActorCriticPolicy(obs_space, spaces.Discrete(3), base, core_size=7)
    assert policy.config.core == "gru" and policy.config.core_size == 7
    assert base.core_size == 12  # the given config is not changed
    assert policy.actor_torso.hidden_size == 7 and policy.recurrent
    q = QNetwork(obs_space, spaces.Discrete(3), base, hidden_sizes=[8])
    assert q.config.hidden_sizes == [8] and q.torso.encoder.output_size == 8
    # Without a config, keywords go over PolicyConfig's defaults.
    assert ActorCriticPolicy(obs_space, spaces.Discrete(3)).config == PolicyConfig()
    with pytest.raises(ValueError, match="hiden_sizes"):
        ActorCriticPolicy(obs_space, spaces.Discrete(3), hiden_sizes=[8])
    with pytest.raises(ValueError, match="hiden_sizes"):
        QNetwork(obs_space, spaces.Discrete(3), hiden_sizes=[8])


@pytest.mark.parametrize("share_torso", [True, False])
def test_value_loss_trains_the_actor_torso_only_when_shared(share_torso):
    obs_space = spaces.Box(-1, 1, (5,))
    policy = ActorCriticPolicy(obs_space, spaces.Discrete(3), share_torso=share_torso)
    _, values, _ = policy.step(random_obs(obs_space, 4), policy.initial_state(4))
    values.pow(2).mean().backward()
    actor_grads = [p.grad for p in policy.actor_torso.parameters()]
    if share_torso:
        assert all(g is not None and bool(g.abs().sum() > 0) for g in actor_grads)
    else:
        assert all(g is None for g in actor_grads)
        assert all(p.grad is not None for p in policy.critic_torso.parameters())


@pytest.mark.parametrize("core", ["none", "gru"])
def test_q_network_gives_one_value_per_action(core):
    obs_space = spaces.Box(-1, 1, (5,))
    config = PolicyConfig(core=core, hidden_sizes=[16], core_size=12)
    q = QNetwork(obs_space, spaces.Discrete(4, start=2), config)
    B, T = 6, 3
    values, state = q.step(random_obs(obs_space, B), q.initial_state(B))
    assert values.shape == (B, 4)
    assert state_shapes(state) == state_shapes(q.initial_state(B))
    starts = torch.zeros(T, B, dtype=torch.bool)
    values, _ = q.sequence(random_obs(obs_space, T, B), q.initial_state(B), starts)
    assert values.shape == (T, B, 4)


@pytest.mark.parametrize(
    "action_space",
    [spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(3)],
    ids=["box", "multidiscrete", "multibinary"],
)
def test_q_network_rejects_non_discrete_actions(action_space):
    with pytest.raises(ValueError, match="Discrete action space"):
        QNetwork(spaces.Box(-1, 1, (5,)), action_space)
