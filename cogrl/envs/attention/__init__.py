"""Attention tasks: glimpse-based recognition (RAM: Mnih et al. 2014).

Registered ids: ``cogrl/GlimpseDigits-v0``, ``cogrl/TranslatedDigits-v0`` and
``cogrl/ClutteredDigits-v0`` (see :mod:`cogrl.envs.attention.glimpse`).
"""

from cogrl.envs.attention.glimpse import ClutteredDigits, GlimpseDigits, TranslatedDigits

__all__ = ["GlimpseDigits", "TranslatedDigits", "ClutteredDigits"]
