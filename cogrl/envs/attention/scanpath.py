"""Saccadic scanpaths on natural images: where to look next, and in what order.

## Description

Wang, Chen, Wang, Jiang, Fang and Yao (2011), "Simulating human saccadic scanpath on natural
images": a saccade is a decision that pursues information. The eye sees sharply only at the
fixation (the fovea) and ever more coarsely with eccentricity; what it has seen stays in a
visual working memory that fades; it does not return at once to what it has just seen
(inhibition of return). Each step the agent chooses the next fixation on a natural image.

The image is held at a working resolution of ``image_size`` = (H, W) pixels (default
48 x 64, OSIE's 4:3), stretched to it whatever its own size, so that a location maps
linearly to the original image's pixels (:meth:`Scanpath.pixels`). With ``f`` the fixation
and ``e(x)`` a pixel's distance from it in working pixels:

- **foveation**: the observed image is a blend of ``n_levels`` Gaussian blurs of the image
  (sigma 0, 1, 2, 4, ... pixels), level ``log2(1 + e(x) / fovea_px)`` at pixel ``x``
  (linear between levels), with ``fovea_px = fovea * W``;
- **acuity**: the fraction of pixel ``x`` the fixation perceives, ``A_f(x) = exp(-e(x)^2 /
  (2 fovea_px^2))``;
- **working memory** ``M(x)`` in [0, 1]: what has been perceived, fading by the
  ``forgetting`` factor at every fixation: ``M <- max(forgetting * M, A_f)``;
- **residual perceptual information** (the paper's RPI): a map ``I`` (summing to 1 over the
  image) times what is not held in memory, ``I(x) (1 - forgetting * M(x))``. A fixation
  gains ``sum_x I(x) max(0, A_f(x) - forgetting * M(x))``: looking again where the memory is
  fresh gains little (inhibition of return), and what has faded is worth looking at again.

This is a simplification of the paper's model, which computes the RPI from multi-band
filter responses of the reference, foveated and remembered images; here a location's
information is a saliency map's value there, and foveation and memory weight it.

## Action Space

``action_mode="continuous"`` (default): ``Box(-1, 1, (2,), float32)``, the next fixation
``(x, y)``: (0, 0) is the image centre, (-1, -1) its top-left corner.

``action_mode="discrete"`` (the PPO preset's; Stable-Baselines3's DQN takes it too):
``Discrete(rows * cols)`` with
``grid_size = (rows, cols)``: action ``a`` fixates the centre of grid cell ``a`` (row
``a // cols``, column ``a % cols``).

An action of the wrong shape or dtype, outside the space, or not finite raises
``ValueError`` (:func:`cogrl.spaces.check_actions`).

## Observation Space

``Dict``:

| key | shape | dtype, range | meaning |
|---|---|---|---|
| ``image`` | (4, H, W) | uint8, 0-255 | the foveated image (RGB) and the working memory ``M`` |
| ``fixation`` | (2,) | float32, [-1, 1] | the current fixation (x, y) |

The memory channel is the fixation history as the model holds it: bright where the eye has
been lately, fading with each fixation. The image is bytes, channels first, so that
Stable-Baselines3's ``MultiInputPolicy`` gives it a CNN (which needs H and W >= 36).

## Rewards

``reward="information"`` (default): the information gained at each fixation (above), with
``I`` the image's saliency map from :mod:`cogrl.saliency` (``saliency``, default the site
entropy rate: Wang et al. 2011 measure perceptual information with it). The return of an
episode is the fraction of the image's information perceived, counting what is perceived
again after it faded.

``reward="human"``: the same gain with ``I`` the density of the human fixations on the
image (``human_data`` needed; :func:`cogrl.metrics.fixation_density`, one degree of visual
angle, 24 of OSIE's 800 pixels, as sigma): learning where people look, without rewarding
a stare at one spot.

``reward="search"``: visual search. A red disc of radius ``target_size`` (a fraction of the
image width) lies at a random place in the image, foveated as the image is (a blur far
from the fixation); the agent is rewarded 1 for a fixation within ``target_size + fovea``
of its centre (the fovea resolves it), and pays ``saccade_cost`` for every other one.

## Starting State

An image drawn uniformly from the split (or, for one reset, the images given as
``reset(options={"image": indices})``, one index per environment: evaluation shows every
image this way); the eyes at its centre, as an experiment's fixation cross leaves them, the
centre's acuity already in the working memory.

## Episode End

The episode terminates after ``n_fixations`` fixations (default 9, the median of OSIE's
scanpaths); in search, it terminates when the target is found and is truncated after
``n_fixations`` fixations without it. At that step ``info`` holds (each with its ``_``
mask):

- ``scanpath``: (n_fixations, 2), the fixations in order, in [-1, 1] (the start is not part
  of it);
- ``image``: the image's index in the split (``env.unwrapped.names[i]``);
- ``coverage`` (information and human rewards): ``sum_x I(x) M(x)``, the part of ``I``
  held in memory at the end, which ``metadata["episode_metrics"] = {"coverage":
  "coverage"}`` reports;
- ``found`` and ``saccades`` in search: whether a fixation found the target, and the
  fixations made until then (all ``n_fixations`` where it was not found), reported as
  ``{"accuracy": "found", "saccades": "saccades"}`` (an instance's ``metadata`` names the
  metrics of its reward).

## Arguments

```python
gym.make("cogrl/Scanpath-v0", split="train", images="skimage", human_data=None,
         reward="information", saliency="site_entropy_rate", action_mode="continuous",
         n_fixations=9, image_size=(48, 64), fovea=0.04, forgetting=0.9, n_levels=5,
         grid_size=(6, 8), target_size=0.04, saccade_cost=0.01, render_mode=None)
```

- ``split``: ``"train"`` or ``"test"``, by image (:func:`cogrl.datasets.image_split`).
- ``images``: ``"skimage"`` (scikit-image's natural photographs, shipped with it: astronaut,
  coffee, rocket, camera, moon, a motorcycle, the Hubble deep field and a tissue
  micrograph for training; the cat, the coins and a retina for testing), or a folder of
  images (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``).
- ``human_data``: a human eye-movement folder (``stimuli/`` and ``fixations.jsonl``, see
  :func:`cogrl.datasets.load_fixations`) whose images are used instead of ``images``.
- ``reward``: ``"information"``, ``"human"`` or ``"search"``.
- ``saliency``: the map ``I`` of the information reward, a name of
  :data:`cogrl.saliency.MODELS`.
- ``n_fixations``, ``image_size``, ``fovea`` (the fovea's sigma, a fraction of the image
  width), ``forgetting`` (in [0, 1]; 0 forgets at once, 1 never), ``n_levels`` (blur
  levels of the foveation; level l blurs with sigma 2^(l-1) px, at most the image's side),
  ``grid_size`` (the discrete mode's cells).
- ``target_size``, ``saccade_cost``: the search target's radius (a fraction of the image
  width) and the cost of a fixation that misses it.

Wang et al.'s (2011) model itself, fixating where the gain is largest, is
:meth:`Scanpath.greedy_fixation`.

## Version History

- v0: initial version.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from cogrl.checks import check_choice, check_int, check_number, check_path
from cogrl.core import BatchedEnv, Info, check_memory, check_num_envs, resolve_device
from cogrl.datasets import SPLITS, image_split, load_fixations

__all__ = ["Scanpath", "REWARDS", "ACTION_MODES", "SKIMAGE_IMAGES"]

REWARDS = ("information", "human", "search")
#: The search target's colour (RGB in [0, 1]): a red disc.
TARGET_COLOUR = (1.0, 0.0, 0.0)
ACTION_MODES = ("continuous", "discrete")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: scikit-image's shipped photographs by split (nothing is downloaded).
SKIMAGE_IMAGES = {
    "train": (
        "astronaut",
        "coffee",
        "rocket",
        "camera",
        "moon",
        "stereo_motorcycle",
        "hubble_deep_field",
        "immunohistochemistry",
    ),
    "test": ("chelsea", "coins", "retina"),
}
#: Sigma of the human fixation density: one degree of visual angle, 24 of OSIE's 800 pixels.
HUMAN_SIGMA = 24.0 / 800.0
# Saliency models see the images at this multiple of the working resolution.
SALIENCY_ZOOM = 4
_RENDER_WIDTH = 384


class Scanpath(BatchedEnv):
    """Batched core of the scanpath task (see the module docstring)."""

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "render_fps": 2,
        "episode_metrics": {"coverage": "coverage"},
        "splits": SPLITS,
    }
    # The episodes in progress: image index, step, fixations so far, working memory.
    state_attributes = ("image", "t", "path", "memory", "target", "target_alpha")
    # reset(options={"image": ...}): which image each environment's new episode shows.
    reset_options = ("image", "item")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        split: str = "train",
        images: str = "skimage",
        human_data: str | None = None,
        reward: str = "information",
        saliency: str = "site_entropy_rate",
        action_mode: str = "continuous",
        n_fixations: int = 9,
        image_size: tuple[int, int] | list[int] = (48, 64),
        fovea: float = 0.04,
        forgetting: float = 0.9,
        n_levels: int = 5,
        grid_size: tuple[int, int] | list[int] = (6, 8),
        target_size: float = 0.04,
        saccade_cost: float = 0.01,
    ) -> None:
        from cogrl.saliency import MODELS

        check_choice("split", split, SPLITS)
        check_choice("reward", reward, REWARDS)
        check_choice("action_mode", action_mode, ACTION_MODES)
        check_choice("saliency", saliency, MODELS)
        check_path("images", images)
        check_path("human_data", human_data, optional=True)
        if reward == "human" and human_data is None:
            raise ValueError("reward='human' needs human_data=FOLDER (human fixations)")
        if human_data is not None and images != "skimage":
            raise ValueError(
                f"give images or human_data, not both: got images={images!r} and "
                f"human_data={human_data!r} (the human-data folder holds its own images)"
            )
        check_int("n_fixations", n_fixations, low=1)
        check_int("n_levels", n_levels, low=1)
        self.image_size = _pair("image_size", image_size, low=8)
        self.grid_size = _pair("grid_size", grid_size, low=1)
        # Level l blurs with sigma 2^(l-1) pixels; past the image's larger side every level
        # is the image's mean colour, and its kernel only costs memory.
        if 2 ** (n_levels - 2) > max(self.image_size):
            top = 2 + int(math.log2(max(self.image_size)))
            raise ValueError(
                f"n_levels must be at most {top} for image_size={self.image_size} (the "
                f"coarsest blur's sigma, 2^(n_levels-2) px, within the image), got {n_levels}"
            )
        check_number("fovea", fovea, low_open=True)
        check_number("forgetting", forgetting, low=0.0, high=1.0)
        check_number("target_size", target_size, low_open=True, high=0.5)
        check_number("saccade_cost", saccade_cost)
        self.target_size, self.saccade_cost = float(target_size), float(saccade_cost)
        num_envs = check_num_envs(num_envs)
        self.n_fixations, self.n_levels = int(n_fixations), int(n_levels)
        self.fovea, self.forgetting = float(fovea), float(forgetting)
        check_memory(
            resolve_device(device),
            self.memory_estimate(num_envs),
            {
                "num_envs": num_envs,
                "image_size": self.image_size,
                "n_levels": self.n_levels,
                "n_fixations": self.n_fixations,
            },
        )
        super().__init__(num_envs, device, render_mode, autoreset)
        self.split, self.reward, self.saliency, self.action_mode = (
            split,
            reward,
            saliency,
            action_mode,
        )
        self.max_episode_steps = self.n_fixations

        h, w = self.image_size
        source = _load_images(images, human_data, split)
        self.names, self.sizes, self.human = source.names, source.sizes, source.human
        pictures = [torch.from_numpy(np.array(p)) for p in source.pictures]
        self.n_images = self.num_items = len(pictures)
        # Every image at the working resolution, and its stack of blurs for the foveation.
        sharp = resize_pictures(pictures, (h, w))
        # (D, L, H * W, 3): each image's blurs, pixels by rows for the foveation's gathers.
        stack = _blur_stack(sharp, self.n_levels).flatten(3).transpose(2, 3)
        self.stack = stack.contiguous().to(self.device)
        # The pictures themselves, for render(): drawn from at their own size on demand.
        self._pictures = source.pictures
        self._frames: dict[int, np.ndarray] = {}
        if reward == "information":
            maps = _saliency_maps(images, human_data, split, saliency, (h, w), pictures)
        elif reward == "human":
            maps = _human_maps(self.human, (h, w))
        else:  # search: no information map
            maps = _normalise(torch.zeros(self.n_images, h, w))
        self.maps = maps.to(self.device)  # (D, H, W), each summing to 1
        if reward == "search":
            self.metadata = {
                **self.metadata,
                "episode_metrics": {"accuracy": "found", "saccades": "saccades"},
            }

        self.single_observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (4, h, w), np.uint8),
                "fixation": spaces.Box(-1.0, 1.0, (2,), np.float32),
            }
        )
        rows, cols = self.grid_size
        if action_mode == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(rows * cols)
        cells = torch.arange(rows * cols, device=self.device)
        self.cell_locations = torch.stack(
            [(cells % cols + 0.5) / cols * 2 - 1, (cells // cols + 0.5) / rows * 2 - 1], 1
        )
        # Pixel centres in [-1, 1] (x, y) and the fovea's sigma in working pixels.
        ys = (torch.arange(h, device=self.device) + 0.5) / h * 2 - 1
        xs = (torch.arange(w, device=self.device) + 0.5) / w * 2 - 1
        self._ys, self._xs = ys, xs
        self.fovea_px = self.fovea * w

        n = self.num_envs
        self.image = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.path = torch.zeros(n, self.n_fixations + 1, 2, device=self.device)
        self.memory = torch.zeros(n, h, w, device=self.device)
        # Search: the target's centre (x, y) and its opacity at each blur level, (N, L, H * W).
        self.target = torch.zeros(n, 2, device=self.device)
        self.target_alpha = torch.zeros(
            n, self.n_levels if reward == "search" else 0, h * w, device=self.device
        )
        self._target_colour = torch.tensor(TARGET_COLOUR, device=self.device)

    def memory_estimate(self, num_envs: int) -> int:
        """About how many bytes a core of ``num_envs`` environments holds and touches in a
        step: the working memory, eccentricities, acuity and the foveation's level weights
        and gathered blur stacks, the observation (kept twice by autoreset), the path."""
        h, w = self.image_size
        # Memory, eccentricity, acuity; level weights; two gathered levels and the view;
        # the search target's opacity per level; the observation's bytes.
        per_pixel = 4 * (6 + 2 * self.n_levels + 3 * self.n_levels + 3 * 4) + 4 * self.n_levels
        return num_envs * (h * w * per_pixel + 8 * (self.n_fixations + 1) + 16)

    # --- geometry ------------------------------------------------------------------------
    @property
    def fixation(self) -> torch.Tensor:
        """The current fixation of every environment, (N, 2) in [-1, 1]."""
        return self.path.gather(1, self.t[:, None, None].expand(-1, 1, 2)).squeeze(1)

    def eccentricity(self, fixation: torch.Tensor) -> torch.Tensor:
        """Distance (N, H, W) of every working pixel from ``fixation`` (N, 2), in pixels."""
        h, w = self.image_size
        dx = (self._xs[None, None, :] - fixation[:, 0, None, None]) * (w / 2)
        dy = (self._ys[None, :, None] - fixation[:, 1, None, None]) * (h / 2)
        return torch.sqrt(dx * dx + dy * dy)

    def acuity(self, fixation: torch.Tensor) -> torch.Tensor:
        """``A_f(x) = exp(-e(x)^2 / (2 fovea_px^2))``, (N, H, W): how much of each pixel a
        fixation perceives."""
        e = self.eccentricity(fixation)
        return torch.exp(-(e * e) / (2 * self.fovea_px**2))

    def foveate(
        self,
        image: torch.Tensor,
        fixation: torch.Tensor,
        target_alpha: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images ``image`` (N,) seen from ``fixation`` (N, 2): (N, 3, H, W), sharp at the
        fixation and blurred with eccentricity (with the search target's opacity at each
        level, ``target_alpha`` (N, L, H * W), over them where given)."""
        h, w = self.image_size
        n, top = image.shape[0], self.n_levels - 1
        level = torch.log2(1 + self.eccentricity(fixation) / self.fovea_px).clamp_(max=top)
        # Each pixel blends the two levels around its own: gather just those two, as rows
        # of (level, pixel) in the (D * L * H * W, 3) table of every image's blurs.
        lower = level.floor().clamp_(max=max(top - 1, 0))
        share = (level - lower).flatten(1)[:, :, None]  # (N, P, 1): weight of the upper level
        pixel = torch.arange(h * w, device=self.device)
        row = (image[:, None] * self.n_levels + lower.long().flatten(1)) * (h * w) + pixel
        table = self.stack.view(-1, 3)
        below = table.index_select(0, row.flatten()).view(n, h * w, 3)
        above = table.index_select(0, (row + h * w * min(top, 1)).flatten()).view(n, h * w, 3)
        seen = torch.lerp(below, above, share)
        if target_alpha is not None:
            # The search target, blurred as the image around it: its opacity at the same
            # two levels, and the image behind it.
            levels = lower.long().flatten(1)[:, None]  # (N, 1, P)
            alpha = torch.lerp(
                target_alpha.gather(1, levels),
                target_alpha.gather(1, (levels + min(top, 1))),
                share.transpose(1, 2),
            ).transpose(1, 2)  # (N, P, 1)
            seen = torch.lerp(seen, self._target_colour.expand_as(seen), alpha)
        return seen.transpose(1, 2).reshape(n, 3, h, w)

    def pixels(self, locations: torch.Tensor | np.ndarray, image: int) -> np.ndarray:
        """Locations (..., 2) in [-1, 1] as (x, y) pixels of image ``image``'s own file."""
        width, height = (int(v) for v in self.sizes[image])
        xy = (np.asarray(torch.as_tensor(locations).cpu(), dtype=np.float64) + 1) / 2
        return xy * np.array([width, height])

    def greedy_fixation(self, chunk: int = 256) -> torch.Tensor:
        """The fixation (N, 2) of Wang et al.'s (2011) model: the working pixel whose
        fixation would gain the most residual perceptual information now (the step's reward
        for every candidate; ties go to the first pixel in row-major order)."""
        h, w = self.image_size
        candidates = torch.stack(
            [self._xs.repeat(h), self._ys.repeat_interleave(w)], 1
        )  # (H * W, 2), row-major
        information = self.maps[self.image].flatten(1)  # (N, P)
        faded = (self.memory * self.forgetting).flatten(1)
        gains = []
        for start in range(0, len(candidates), chunk):
            acuity = self.acuity(candidates[start : start + chunk]).flatten(1)  # (C, P)
            residual = (acuity[None] - faded[:, None]).clamp_min(0)  # (N, C, P)
            gains.append(torch.einsum("ncp,np->nc", residual, information))
        return candidates[torch.cat(gains, 1).argmax(1)]

    # --- episodes ------------------------------------------------------------------------
    def _apply_options(self, options: dict[str, Any]) -> None:
        super()._apply_options(options)
        if "image" in options:  # the same as "item": the images are the items
            self._items = self._check_items(options["image"], "image")

    def _draw_images(self, index: torch.Tensor) -> torch.Tensor:
        chosen = self._take_items(index)
        if chosen is not None:  # only the reset that was given the option
            return chosen
        return self.rng.integers(index, 1, self.n_images)[:, 0]

    def _start_memory(self, m: int) -> torch.Tensor:
        return self.acuity(torch.zeros(m, 2, device=self.device))

    def _draw_targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Search targets for the environments of ``index``: centres (M, 2), uniform over
        the image less a border of ``target_size``, and their opacity at each blur level
        (M, L, H * W)."""
        h, w = self.image_size
        # The disc's radius is 2 * target_size of the width in [-1, 1] units, and
        # 2 * target_size * W / H of the height.
        inside = [1 - 2 * self.target_size, max(1 - 2 * self.target_size * w / h, 0.0)]
        u = self.rng.uniform(index, 2, start=1) * 2 - 1
        centre = u * torch.tensor(inside, device=self.device)
        # A disc of radius target_size * W working pixels, its edge anti-aliased.
        radius = self.target_size * w
        disc = (radius + 0.5 - self.eccentricity(centre)).clamp(0, 1)[:, None]
        return centre, _blur_stack(disc, self.n_levels).flatten(2)

    def _reset_envs(self, index: torch.Tensor) -> None:
        self.image[index] = self._draw_images(index)
        self.t[index] = 0
        self.path[index] = 0.0
        self.memory[index] = self._start_memory(index.numel())
        if self.reward == "search":
            self.target[index], self.target_alpha[index] = self._draw_targets(index)

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw for every environment, keep the draws where ``mask`` is set.
        torch.where(mask, self._draw_images(self._all), self.image, out=self.image)
        self.t.masked_fill_(mask, 0)
        self.path.masked_fill_(mask[:, None, None], 0.0)
        start = self._start_memory(self.num_envs)
        torch.where(mask[:, None, None], start, self.memory, out=self.memory)
        if self.reward == "search":
            target, alpha = self._draw_targets(self._all)
            torch.where(mask[:, None], target, self.target, out=self.target)
            torch.where(mask[:, None, None], alpha, self.target_alpha, out=self.target_alpha)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        if self.action_mode == "continuous":
            fixation = action.to(self.path.dtype)
        else:
            fixation = self.cell_locations[action]
        self.t += 1
        self.path.scatter_(1, self.t[:, None, None].expand(-1, 1, 2), fixation[:, None, :])
        # Residual perceptual information gained: sum_x I(x) max(0, A_f(x) - forgetting M(x)).
        information = self.maps[self.image]
        acuity = self.acuity(fixation)
        faded = self.memory * self.forgetting
        gain = (information * (acuity - faded).clamp_min(0)).sum((1, 2))
        torch.maximum(faded, acuity, out=self.memory)
        last = self.t >= self.n_fixations
        if self.reward == "search":
            return self._search_step(fixation, last)
        info: Info = {
            "scanpath": self.path[:, 1:].clone(),
            "_scanpath": last,
            "image": self.image.clone(),
            "_image": last,
            "coverage": (information * self.memory).sum((1, 2)),
            "_coverage": last,
        }
        return gain, last, torch.zeros_like(last), info

    def _search_step(self, fixation: torch.Tensor, last: torch.Tensor):
        w = self.image_size[1]
        h = self.image_size[0]
        offset = (fixation - self.target) * torch.tensor([w / 2, h / 2], device=self.device)
        found = offset.norm(dim=1) <= (self.target_size + self.fovea) * w
        reward = torch.where(found, 1.0, -self.saccade_cost)
        truncated = last & ~found
        done = found | truncated
        info: Info = {
            "scanpath": self.path[:, 1:].clone(),
            "_scanpath": done,
            "image": self.image.clone(),
            "_image": done,
            "found": found,
            "_found": done,
            "saccades": self.t.clone(),
            "_saccades": done,
        }
        return reward, found, truncated, info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if index is None:
            fixation, image, memory = self.fixation, self.image, self.memory
        else:
            fixation = self.path[index, self.t[index]]
            image, memory = self.image[index], self.memory[index]
        alpha = None
        if self.reward == "search":
            alpha = self.target_alpha if index is None else self.target_alpha[index]
        seen = torch.cat([self.foveate(image, fixation, alpha), memory[:, None]], 1)
        as_bytes = seen.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
        return {"image": as_bytes, "fixation": fixation.clone()}

    # --- rendering -----------------------------------------------------------------------
    def _frame(self, image: int) -> np.ndarray:
        """Image ``image`` as uint8 (h, 384, 3), its aspect ratio the working one's."""
        if image not in self._frames:
            from PIL import Image

            h, w = self.image_size
            size = (_RENDER_WIDTH, round(_RENDER_WIDTH * h / w))
            resized = Image.fromarray(np.asarray(self._pictures[image])).resize(size)
            self._frames[image] = np.asarray(resized)
        return self._frames[image]

    def render(self, index: int = 0) -> np.ndarray:
        """Environment ``index``'s image with its fixations so far (yellow to red, the
        current one ringed) joined by the saccades."""
        from PIL import Image, ImageDraw

        if not 0 <= index < self.num_envs:
            raise ValueError(f"index must lie in [0, {self.num_envs}), got {index}")
        picture = Image.fromarray(self._frame(int(self.image[index])))
        width, height = picture.size
        t = int(self.t[index])
        path = ((self.path[index, : t + 1].cpu().numpy() + 1) / 2) * np.array([width, height])
        draw = ImageDraw.Draw(picture)
        if self.reward == "search":
            x, y = ((self.target[index].cpu().numpy() + 1) / 2) * np.array([width, height])
            r = self.target_size * width
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 0))
        points = [tuple(p) for p in path]
        if len(points) > 1:
            draw.line(points, fill=(0, 200, 255), width=2)
        radius = max(3, width // 80)
        for i, (x, y) in enumerate(points):
            share = i / max(len(points) - 1, 1)
            colour = (255, int(220 * (1 - share)), 0)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
        x, y = points[-1]
        ring = 2 * radius
        draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=(255, 0, 0), width=2)
        return np.asarray(picture)


# --- images and maps ---------------------------------------------------------------------------


class _Source:
    """An image set's pictures (uint8 (H, W, 3) arrays), names, sizes, and human data."""

    def __init__(self, names, pictures, human=None) -> None:
        self.names = tuple(names)
        self.pictures = tuple(pictures)
        self.sizes = np.array([(p.shape[1], p.shape[0]) for p in self.pictures], np.int64)
        self.human = human


def _load_images(images: str, human_data: str | None, split: str) -> _Source:
    if human_data is not None:
        return _human_source(str(Path(human_data).expanduser().resolve()), split)
    if images == "skimage":
        return _Source(SKIMAGE_IMAGES[split], [_skimage(n) for n in SKIMAGE_IMAGES[split]])
    return _folder_source(str(Path(images).expanduser().resolve()), images, split)


# Decoded image sets by folder and split: decoding hundreds of photographs takes seconds, and
# vector environments and evaluation build the same core again.
@functools.lru_cache(maxsize=4)
def _human_source(human_data: str, split: str) -> _Source:
    data = load_fixations(human_data, split)
    return _Source(data.names, [data.image(i) for i in range(len(data))], data)


@functools.lru_cache(maxsize=4)
def _folder_source(folder_name: str, images: str, split: str) -> _Source:
    folder = Path(folder_name)
    if not folder.is_dir():
        raise ValueError(
            f"images must be 'skimage' or a folder of images, got {images!r} (not a folder)"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [p for p in files if image_split(p.name) == split]
    if not files:
        raise ValueError(
            f"no {split!r} image ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}; an image's "
            "split is fixed by its name (cogrl.datasets.image_split)"
        )
    return _Source([p.name for p in files], [_read_rgb(p) for p in files])


@functools.cache
def _skimage(name: str) -> np.ndarray:
    import skimage.data

    picture = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        picture = picture[0]
    return _rgb(np.asarray(picture))


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _rgb(picture: np.ndarray) -> np.ndarray:
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    picture = picture[:, :, :3]
    if picture.dtype != np.uint8:
        picture = (picture.astype(np.float64) * (255 / max(picture.max(), 1))).astype(np.uint8)
    return picture


def resize_pictures(pictures: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """uint8 (H, W, 3) pictures as one float batch (D, 3, h, w) in [0, 1] (antialiased)."""
    from cogrl.saliency._image import resize

    batch = torch.cat([resize(p.permute(2, 0, 1)[None].float() / 255, *size) for p in pictures])
    return batch.clamp_(0, 1)  # antialiased resizing may overshoot [0, 1] by rounding


def _blur_stack(images: torch.Tensor, n_levels: int) -> torch.Tensor:
    """(D, 3, H, W) -> (D, L, 3, H, W): level 0 sharp, level l Gaussian sigma 2^(l-1) px."""
    from cogrl.saliency._image import gaussian_blur

    levels = [images]
    for level in range(1, n_levels):
        levels.append(gaussian_blur(images, 2.0 ** (level - 1)))
    return torch.stack(levels, 1).contiguous()


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """Maps (D, H, W) >= 0 scaled to sum 1; an all-zero map becomes uniform."""
    total = maps.sum((1, 2), keepdim=True)
    uniform = torch.full_like(maps, 1.0 / maps[0].numel())
    return torch.where(total > 0, maps / total.clamp_min(1e-30), uniform)


# Saliency maps by image source, split, model and size: the models take seconds per image
# set, and vector environments and evaluation build the same core again.
_SALIENCY_CACHE: dict[tuple, torch.Tensor] = {}


def _saliency_maps(images, human_data, split, model, size, pictures) -> torch.Tensor:
    source = str(images) if human_data is None else str(Path(human_data).resolve())
    key = (source, split, model, size)
    if key not in _SALIENCY_CACHE:
        if len(_SALIENCY_CACHE) >= 16:
            _SALIENCY_CACHE.pop(next(iter(_SALIENCY_CACHE)))
        _SALIENCY_CACHE[key] = _compute_saliency(model, size, pictures)
    return _SALIENCY_CACHE[key]


def _compute_saliency(model: str, size: tuple[int, int], pictures) -> torch.Tensor:
    from cogrl.saliency import MODELS

    h, w = size
    big = resize_pictures(pictures, (SALIENCY_ZOOM * h, SALIENCY_ZOOM * w))
    maps = MODELS[model](big).clamp_min(0)
    maps = F.interpolate(maps[:, None], size=size, mode="area")[:, 0]
    return _normalise(maps)


def _human_maps(human, size: tuple[int, int]) -> torch.Tensor:
    from cogrl.metrics import fixation_density

    h, w = size
    maps = []
    for i in range(len(human)):
        width, height = (int(v) for v in human.sizes[i])
        xy = human.fixations(i) * np.array([w / width, h / height])
        maps.append(torch.as_tensor(fixation_density(xy, (h, w), HUMAN_SIGMA * w)))
    return _normalise(torch.stack(maps).float())


def _pair(name: str, value: Any, low: int) -> tuple[int, int]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)
        or min(value) < low
    ):
        raise ValueError(f"{name} must be two ints >= {low} (rows, columns), got {value!r}")
    return int(value[0]), int(value[1])
