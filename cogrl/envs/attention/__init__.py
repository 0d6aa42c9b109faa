"""Attention tasks: glimpse-based recognition (RAM: Mnih et al. 2014).

Registered ids: ``cogrl/GlimpseDigits-v0``, ``cogrl/TranslatedDigits-v0`` and
``cogrl/ClutteredDigits-v0`` (see :mod:`cogrl.envs.attention.glimpse`); multi-object
recognition (DRAM: Ba et al. 2015): ``cogrl/MultiDigits-v0``
(:mod:`cogrl.envs.attention.multi`); visual search among digits: ``cogrl/VisualSearch-v0``
(:mod:`cogrl.envs.attention.search`).
"""

from cogrl.envs.attention.glimpse import ClutteredDigits, GlimpseDigits, TranslatedDigits
from cogrl.envs.attention.multi import MultiDigits
from cogrl.envs.attention.search import VisualSearch

__all__ = ["GlimpseDigits", "TranslatedDigits", "ClutteredDigits", "MultiDigits", "VisualSearch"]
