"""The RAM paper's whole-image baselines (cogrl.baselines): their shapes as the paper gives
them, their training data drawn from a glimpse task's episodes, and that they learn."""

from __future__ import annotations

import pytest
import torch

from cogrl.baselines import FullyConnected, PaperCNN, canvas_batch
from cogrl.envs import make_core


def test_paper_cnn_is_one_conv_layer_of_8_10x10_stride_5_then_256_units() -> None:
    model = PaperCNN(60)
    conv, _, _, hidden, _, out = model.net
    assert (conv.out_channels, conv.kernel_size, conv.stride) == (8, (10, 10), (5, 5))
    assert hidden.in_features == 8 * 11 * 11 and hidden.out_features == 256
    assert out.out_features == 10
    assert model(torch.zeros(3, 1, 60, 60)).shape == (3, 10)


def test_fully_connected_is_two_layers_of_256() -> None:
    model = FullyConnected(28)
    linear = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 256), (256, 256), (256, 10)]


def test_canvas_batch_is_the_cores_next_episodes() -> None:
    core = make_core("cogrl/TranslatedDigits-v0", num_envs=4)
    core.reset(seed=0)
    canvases, labels = canvas_batch(core)
    assert canvases.shape == (4, 1, 60, 60) and labels.shape == (4,)
    torch.testing.assert_close(canvases[:, 0], core.canvas_images())
    again = make_core("cogrl/TranslatedDigits-v0", num_envs=4)
    again.reset(seed=0)
    again.reset()
    torch.testing.assert_close(again.canvas_images(), canvases[:, 0])
    assert torch.equal(again.label, labels)


@pytest.mark.parametrize("baseline", [PaperCNN, FullyConnected])
def test_baselines_learn_digits_well_above_chance(baseline) -> None:
    torch.manual_seed(0)
    train = make_core("cogrl/GlimpseDigits-v0", num_envs=128, split="train")
    train.reset(seed=0)
    test = make_core("cogrl/GlimpseDigits-v0", num_envs=360, split="test")
    test.reset(seed=1)
    model = baseline(28)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(150):
        canvases, labels = canvas_batch(train)
        loss = torch.nn.functional.cross_entropy(model(canvases), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(test.canvas_images()[:, None]).argmax(1) == test.label).float().mean()
    assert accuracy > 0.7  # chance: 0.1


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"expected canvases of shape \(B, 1, 28, 28\)"):
        PaperCNN(28)(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="canvas must be an int >= 10"):
        PaperCNN(8)
    with pytest.raises(ValueError, match="glimpse task's core"):
        canvas_batch(make_core("cogrl/DelayedRecall-v0"))
