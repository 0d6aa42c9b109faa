"""Encoders: from an observation to a feature vector, chosen from the observation space.

Every encoder is an ``nn.Module`` from a batch of observations ``(B, ...)`` to features
``(B, output_size)``:

- :class:`MLPEncoder` for flat ``Box`` and ``MultiBinary`` observations;
- :class:`CNNEncoder` (the Nature-DQN torso) for images;
- :class:`EmbeddingEncoder` for token ids (``Discrete``, ``MultiDiscrete``);
- :class:`DictEncoder` for ``Dict`` observations: every key encoded, features concatenated;
- :class:`GlimpseNetwork`, RAM's ``f_g``, for the retina's glimpses and their location.

:func:`make_encoder` picks by space alone; a policy asks for an encoder by name
(``policy.encoder``: ``"auto"`` for that choice, ``"glimpse"`` for RAM's glimpse network)
from :data:`ENCODERS`, where a user registers their own with :func:`register_encoder`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "CNNEncoder",
    "DictEncoder",
    "ENCODERS",
    "EmbeddingEncoder",
    "GlimpseNetwork",
    "MLPEncoder",
    "build_encoder",
    "glimpse_network",
    "make_encoder",
    "register_encoder",
]


#: ``GlimpseNetwork``'s choices of ``h_g``: RAM's one layer, or DRAM's convolutions.
GLIMPSE_IMAGES = ("fc", "conv")
#: The channels of the convolutional ``G_image``'s three layers.
CONV_CHANNELS = (16, 16, 16)


class GlimpseNetwork(nn.Module):
    """RAM's glimpse network ``f_g``: the feature ``g_t`` of a glimpse and its location.

    ``h_g = ReLU(Linear(glimpse))``, ``h_l = ReLU(Linear(location))``,
    ``g = ReLU(Linear(h_g) + Linear(h_l))``; the paper's sizes are 128, 128 and 256.
    With ``combine="product"`` it is DRAM's (Ba et al. 2015, section 3.1), where "what"
    and "where" gate each other: ``g = ReLU(Linear(h_g)) * ReLU(Linear(h_l))``.
    Takes an observation dict holding the retina's flat patches (B, k*g*g) and the location
    (B, 2): the glimpse tasks' ``{"glimpse": ..., "location": ...}`` by default, other
    keys with ``glimpse_key`` and ``location_key``.

    ``image="conv"`` (it needs ``patches=(k, g)``, the retina's patches and their side) makes
    ``h_g`` convolutional, as DRAM's ``G_image`` (three convolutional layers without
    pooling, then a fully connected one: Ba et al. 2015, section 3.1, as recalled; the
    paper's widths are not): the ``k`` patches as the channels of one ``g x g`` image,
    three 3 x 3 convolutions with ReLUs and no padding (:data:`CONV_CHANNELS` channels),
    then ``ReLU(Linear)`` to ``glimpse_hidden``. ``image="fc"`` (default) is RAM's one
    layer.
    """

    def __init__(
        self,
        glimpse_size: int,
        location_size: int = 2,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        output_size: int = 256,
        glimpse_key: str = "glimpse",
        location_key: str = "location",
        combine: str = "sum",
        image: str = "fc",
        patches: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if combine not in ("sum", "product"):
            raise ValueError(f"combine must be 'sum' or 'product', got {combine!r}")
        if image not in GLIMPSE_IMAGES:
            raise ValueError(f"image must be one of {GLIMPSE_IMAGES}, got {image!r}")
        self.combine = combine
        self.glimpse_key, self.location_key = glimpse_key, location_key
        self.glimpse_conv = None
        if image == "conv":
            k, g = patches if patches is not None else (0, 0)
            if patches is None or k * g * g != glimpse_size or g < 7:
                raise ValueError(
                    f"image='conv' needs patches=(k, g): k patches of g x g pixels, g >= 7 "
                    f"(three unpadded 3 x 3 convolutions), making the glimpse's "
                    f"{glimpse_size} values; got patches={patches!r}"
                )
            layers: list[nn.Module] = [nn.Unflatten(1, (k, g, g))]
            channels = k
            for width in CONV_CHANNELS:
                layers += [nn.Conv2d(channels, width, 3), nn.ReLU()]
                channels = width
            self.glimpse_conv = nn.Sequential(*layers, nn.Flatten())
            glimpse_size = channels * (g - 6) ** 2
        self.glimpse_fc = nn.Linear(glimpse_size, glimpse_hidden)
        self.location_fc = nn.Linear(location_size, location_hidden)
        self.glimpse_out = nn.Linear(glimpse_hidden, output_size)
        self.location_out = nn.Linear(location_hidden, output_size)
        self.output_size = output_size

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = obs[self.glimpse_key]
        if self.glimpse_conv is not None:
            x = self.glimpse_conv(x)
        h_g = F.relu(self.glimpse_fc(x))
        h_l = F.relu(self.location_fc(obs[self.location_key]))
        if self.combine == "product":
            return F.relu(self.glimpse_out(h_g)) * F.relu(self.location_out(h_l))
        return F.relu(self.glimpse_out(h_g) + self.location_out(h_l))


class Tanh(nn.Module):
    """``tanh``; compiled for the CPU, as ``2 sigmoid(2x) - 1`` (the same function, within
    2e-7). Inductor's CPU code takes ``tanh`` from ATen's vectorised one, which in this
    machine's torch build (x86, AVX-512) costs about five ``sigmoid``s (47 us for 256 x 64
    values on one thread, BENCHMARKS.md, "Issue 21"); the sigmoid form fuses into one
    cheap loop. Eager, it is
    ``torch.tanh``, bit for bit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() and x.device.type == "cpu":
            return 2 * torch.sigmoid(2 * x) - 1
        return torch.tanh(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": Tanh}


class MLPEncoder(nn.Module):
    """A multilayer perceptron for flat ``Box`` observations (B, n) -> (B, output)."""

    def __init__(
        self, input_size: int, hidden_sizes: Sequence[int] = (256,), activation: str = "relu"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        layers: list[nn.Module] = []
        size = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), ACTIVATIONS[activation]()]
            size = hidden
        self.net = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.flatten(1).float())


class CNNEncoder(nn.Module):
    """The Nature-DQN convolutional torso (Mnih et al. 2015) for image observations.

    Takes (B, C, H, W) or, when ``channels_last``, (B, H, W, C); ``uint8`` images are scaled
    to [0, 1]. Three convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1) for images of at least
    36 x 36 pixels, two smaller ones (32 3x3/1, 64 3x3/2) below that, then a linear layer
    to ``output_size``.
    """

    def __init__(self, space: spaces.Box, output_size: int = 256) -> None:
        super().__init__()
        shape = space.shape
        # Channels are the smallest axis: (H, W, C) images are moved to (C, H, W).
        self.channels_last = shape[-1] < shape[0]
        c, h, w = (shape[2], shape[0], shape[1]) if self.channels_last else shape
        self.scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        if min(h, w) >= 36:
            convs = [nn.Conv2d(c, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU()]
            convs += [nn.Conv2d(64, 64, 3, 1), nn.ReLU()]
        else:
            convs = [nn.Conv2d(c, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU()]
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            n = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, output_size), nn.ReLU())
        self.output_size = output_size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() * self.scale
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.fc(self.convs(x))


class EmbeddingEncoder(nn.Module):
    """Token ids to vectors: ``Discrete(n)`` (B,) -> (B, d); ``MultiDiscrete(nvec)`` (B, k)
    -> the concatenation of one embedding per position (B, k * d)."""

    def __init__(self, space: spaces.Discrete | spaces.MultiDiscrete, embedding_size: int) -> None:
        super().__init__()
        if isinstance(space, spaces.Discrete):
            nvec, self.start = np.array([space.n]), np.array([space.start])
        else:
            nvec, self.start = space.nvec.reshape(-1), space.start.reshape(-1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        # One table for all positions; position i's ids are shifted by offsets[i].
        self.register_buffer(
            "offsets", torch.as_tensor(offsets - self.start, dtype=torch.int64), persistent=False
        )
        self.embedding = nn.Embedding(int(nvec.sum()), embedding_size)
        self.output_size = embedding_size * len(nvec)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        ids = obs.long().reshape(obs.shape[0], -1) + self.offsets
        return self.embedding(ids).flatten(1)


class DictEncoder(nn.Module):
    """A ``Dict`` observation: one encoder per key, their features concatenated (sorted keys)."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(sorted(encoders.items())))
        self.output_size = sum(e.output_size for e in self.encoders.values())

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([e(obs[k]) for k, e in self.encoders.items()], dim=-1)


def make_encoder(
    observation_space: spaces.Space,
    output_size: int = 256,
    hidden_sizes: Sequence[int] | None = None,
    activation: str = "relu",
) -> nn.Module:
    """The encoder for ``observation_space``; its ``output_size`` is the feature's width.

    - flat (1-D) ``Box`` or ``MultiBinary``: :class:`MLPEncoder` with ``hidden_sizes``
      (default: one layer of ``output_size``).
    - ``Box`` of 3 dims (an image, channels first or last): :class:`CNNEncoder`.
    - ``Discrete`` / ``MultiDiscrete`` (token ids): :class:`EmbeddingEncoder`.
    - ``Dict``: :class:`DictEncoder` over the encoders of all its entries.

    Any other space is a ``ValueError`` that names it.
    """
    sizes = tuple(hidden_sizes) if hidden_sizes is not None else (output_size,)
    if isinstance(observation_space, spaces.Dict):
        return DictEncoder(
            {
                key: make_encoder(space, output_size, sizes, activation)
                for key, space in observation_space.spaces.items()
            }
        )
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1:
        return MLPEncoder(observation_space.shape[0], sizes, activation)
    if isinstance(observation_space, spaces.MultiBinary):
        return MLPEncoder(int(np.prod(observation_space.shape)), sizes, activation)
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
        return CNNEncoder(observation_space, output_size)
    if isinstance(observation_space, (spaces.Discrete, spaces.MultiDiscrete)):
        return EmbeddingEncoder(observation_space, output_size)
    raise ValueError(
        f"no encoder for observation space {observation_space}: expected a flat Box, an "
        "image Box (3 dims), MultiBinary, Discrete, MultiDiscrete, or a Dict of these"
    )


def glimpse_network(
    observation_space: spaces.Space,
    output_size: int = 256,
    glimpse_hidden: int = 128,
    location_hidden: int = 128,
    glimpse_key: str = "glimpse",
    location_key: str = "location",
) -> GlimpseNetwork:
    """RAM's glimpse network for a ``Dict`` space holding flat ``Box`` entries
    ``glimpse_key`` and ``location_key``; any other space is a ValueError naming it."""
    entries = observation_space.spaces if isinstance(observation_space, spaces.Dict) else {}
    glimpse, location = entries.get(glimpse_key), entries.get(location_key)
    if not all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in (glimpse, location)):
        raise ValueError(
            f"the glimpse encoder needs a Dict observation with flat Box entries "
            f"{glimpse_key!r} and {location_key!r}, got {observation_space}"
        )
    return GlimpseNetwork(
        glimpse.shape[0],
        location.shape[0],
        glimpse_hidden,
        location_hidden,
        output_size,
        glimpse_key,
        location_key,
    )


#: ``builder(observation_space, config) -> encoder``, where ``config`` is a
#: :class:`~cogrl.nn.policies.PolicyConfig` and the encoder's ``output_size`` is its
#: feature width.
EncoderBuilder = Callable[[spaces.Space, Any], nn.Module]

#: Encoders by name, for ``policy.encoder``.
ENCODERS: dict[str, EncoderBuilder] = {}


def register_encoder(name: str) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Decorator: make ``builder(observation_space, policy_config)`` the encoder ``name``."""

    def decorate(builder: EncoderBuilder) -> EncoderBuilder:
        ENCODERS[name] = builder
        return builder

    return decorate


def build_encoder(name: str, observation_space: spaces.Space, config: Any) -> nn.Module:
    """The encoder ``name`` for ``observation_space`` as ``config`` describes it."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; available: {sorted(ENCODERS)}")
    return ENCODERS[name](observation_space, config)


@register_encoder("auto")
def _auto(observation_space: spaces.Space, config: Any) -> nn.Module:
    # An MLP of hidden_sizes for flat observations; hidden_sizes[-1] (or core_size, for
    # none) is the feature width of the other encoders.
    sizes = tuple(config.hidden_sizes)
    feature = sizes[-1] if sizes else config.core_size
    return make_encoder(observation_space, feature, sizes, config.activation)


@register_encoder("glimpse")
def _glimpse(observation_space: spaces.Space, config: Any) -> nn.Module:
    sizes = tuple(config.hidden_sizes)
    feature = sizes[-1] if sizes else config.core_size
    return glimpse_network(
        observation_space, feature, config.glimpse_hidden, config.location_hidden
    )
