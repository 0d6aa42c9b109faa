"""What cogrl's policies are made of: encoders, cores, action heads, recurrent state, and
the composed policies every learner builds from one :class:`PolicyConfig`.

- :mod:`cogrl.nn.encoders`: observation -> feature (MLP, CNN, embeddings, Dict, RAM's
  glimpse network), by space or by name.
- :mod:`cogrl.nn.cores`: the :class:`Core` contract and the registry of cores by name
  (:func:`register_core`; ``none``, ``rnn``, ``gru``, ``lstm``; the memory cores below).
- :mod:`cogrl.nn.distributions`: action heads behind one API (sample, log_prob, entropy,
  mode, to_env) and the value head.
- :mod:`cogrl.nn.state`: map, reset, index, detach and pack recurrent state of any nesting.
- :mod:`cogrl.nn.sequences`: sequences cut at episode starts, run side by side.
- :mod:`cogrl.nn.memory`: the Neural Turing Machine's read, write and addressing functions.
- :mod:`cogrl.nn.ntm`: the Neural Turing Machine core, :class:`NTMCore` (``ntm``).
- :mod:`cogrl.nn.dnc`: the Differentiable Neural Computer's memory updates (usage,
  allocation, temporal links) and its core, :class:`DNCCore` (``dnc``).
- :mod:`cogrl.nn.memn2n`: the end-to-end memory network core, :class:`MemN2N`
  (``memn2n``), and its position-encoding sentence encoder, :class:`BoWEncoder` (``bow``).
- :mod:`cogrl.nn.policies`: :class:`PolicyConfig`, :class:`Torso`,
  :class:`ActorCriticPolicy`, :class:`QNetwork`, :class:`RAMPolicy`, :class:`DRAMPolicy`.
"""

from cogrl.nn.cores import (
    CORES,
    Core,
    GRUCore,
    IdentityCore,
    LSTMCore,
    RNNCore,
    available_cores,
    core_class,
    make_core,
    register_core,
)
from cogrl.nn.distributions import (
    ActionHead,
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    TanhGaussianHead,
    ValueHead,
    make_action_head,
)
from cogrl.nn.dnc import DNCCore
from cogrl.nn.encoders import (
    ENCODERS,
    CNNEncoder,
    DictEncoder,
    EmbeddingEncoder,
    GlimpseNetwork,
    MLPEncoder,
    build_encoder,
    make_encoder,
    register_encoder,
)
from cogrl.nn.memn2n import BoWEncoder, MemN2N
from cogrl.nn.ntm import NTMCore
from cogrl.nn.policies import (
    ActorCriticPolicy,
    DRAMPolicy,
    PolicyConfig,
    QNetwork,
    RAMPolicy,
    Torso,
    make_torso,
)
from cogrl.nn.state import (
    State,
    detach_state,
    index_state,
    map_state,
    pack_state,
    reset_state,
    unpack_state,
)

__all__ = [
    "CORES",
    "ENCODERS",
    "ActionHead",
    "ActorCriticPolicy",
    "BernoulliHead",
    "BoWEncoder",
    "CNNEncoder",
    "CategoricalHead",
    "Core",
    "DNCCore",
    "DRAMPolicy",
    "DictEncoder",
    "EmbeddingEncoder",
    "GRUCore",
    "GaussianHead",
    "GlimpseNetwork",
    "IdentityCore",
    "LSTMCore",
    "MLPEncoder",
    "MemN2N",
    "MultiCategoricalHead",
    "NTMCore",
    "PolicyConfig",
    "QNetwork",
    "RAMPolicy",
    "RNNCore",
    "State",
    "TanhGaussianHead",
    "Torso",
    "ValueHead",
    "available_cores",
    "build_encoder",
    "core_class",
    "detach_state",
    "index_state",
    "make_action_head",
    "make_core",
    "make_encoder",
    "make_torso",
    "map_state",
    "pack_state",
    "register_core",
    "register_encoder",
    "reset_state",
    "unpack_state",
]
