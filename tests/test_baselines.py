"""The whole-image baselines (cogrl.baselines): the RAM paper's as the paper gives them, the
spatial transformer's sampling and soft attention's weights checked by hand, their
training data drawn from a glimpse task's episodes, and that they learn."""

from __future__ import annotations

import pytest
import torch

from cogrl.baselines import (
    MODELS,
    FullyConnected,
    PaperCNN,
    SoftAttention,
    SpatialTransformer,
    canvas_batch,
    make_model,
)
from cogrl.datasets import load_digits
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
    with pytest.raises(ValueError, match="recognition task's core"):
        canvas_batch(make_core("cogrl/DelayedRecall-v0"))
    # The search task has canvases but no class to learn.
    with pytest.raises(ValueError, match="recognition task's core"):
        canvas_batch(make_core("cogrl/VisualSearch-v0"))


# --- several objects, soft attention, pixels read ---------------------------------------------
MODEL_NAMES = sorted(MODELS)
# Small settings of the transformer's classifier keep the overfitting test to a second.
SMALL = {"fc": {}, "cnn": {}, "stn": {"channels": [8, 16], "out_size": 20}, "soft": {}}


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_logits_are_one_row_per_image_or_one_per_object(name: str, n_outputs: int) -> None:
    model = make_model(name, 60, n_classes=7, n_outputs=n_outputs)
    logits = model(torch.rand(3, 1, 60, 60))
    assert logits.shape == ((3, 7) if n_outputs == 1 else (3, n_outputs, 7))


def test_n_outputs_widens_the_paper_baselines_last_layer_only() -> None:
    one, two = PaperCNN(60), PaperCNN(60, n_outputs=2)
    assert [type(m) for m in one.net] == [type(m) for m in two.net]
    assert (one.net[-1].in_features, one.net[-1].out_features) == (256, 10)
    assert (two.net[-1].in_features, two.net[-1].out_features) == (256, 20)
    fc = FullyConnected(28, n_outputs=3)
    assert fc.net[-1].out_features == 30 and fc(torch.zeros(2, 1, 28, 28)).shape == (2, 3, 10)


def test_stn_at_its_identity_initialisation_samples_the_canvas_bilinearly() -> None:
    # A 4 x 4 canvas whose pixel (r, c) holds 4 r + c: bilinear sampling of a linear image
    # gives 4 r' + c' at the sampled point (r', c'), in pixel units.
    canvas = torch.arange(16.0).view(1, 1, 4, 4)
    same = SpatialTransformer(4, out_size=4, channels=[4])
    torch.testing.assert_close(same.transform(canvas)[:, 0], canvas[:, 0])
    # Half the size: each crop pixel centre falls between 2 x 2 canvas pixels.
    half = SpatialTransformer(4, out_size=2, channels=[4])
    expected = torch.tensor([[2.5, 4.5], [10.5, 12.5]])
    torch.testing.assert_close(half.transform(canvas)[0, 0], expected)
    # A centred zoom of 0.5 on 4 samples: crop pixel j at x = 0.5 (2j + 1 - 4) / 4, which
    # is canvas column (x + 1) * 4 / 2 - 0.5 = 0.75, 1.25, 1.75, 2.25.
    zoom = SpatialTransformer(4, out_size=4, channels=[4], init_scale=0.5)
    at = torch.tensor([0.75, 1.25, 1.75, 2.25])
    torch.testing.assert_close(zoom.transform(canvas)[0, 0], 4 * at[:, None] + at[None, :])
    theta = zoom.theta(canvas)
    torch.testing.assert_close(theta, torch.tensor([[[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]]]))


def test_stn_runs_one_transformer_per_object_with_a_shared_classifier() -> None:
    model = SpatialTransformer(28, n_outputs=2, out_size=14, channels=[4])
    with torch.no_grad():  # the second transformer looks at the right half
        model.localisation[-1].bias[6:] = torch.tensor([0.5, 0.0, 0.5, 0.0, 1.0, 0.0])
    canvases = torch.rand(3, 1, 28, 28)
    crops = model.transform(canvases)
    assert crops.shape == (3, 2, 14, 14)
    right = canvases[:, 0, :, 14:].unfold(1, 2, 2).mean(-1)  # 2 rows into 1: (3, 14, 14)
    torch.testing.assert_close(crops[:, 1], right)
    logits = model(canvases)
    torch.testing.assert_close(logits[:, 1], model.classifier(crops[:, 1:2]))


def test_soft_attention_weights_sum_to_one_and_the_context_is_their_weighted_sum() -> None:
    torch.manual_seed(0)
    model = SoftAttention(28, n_steps=2)
    canvases = torch.rand(3, 1, 28, 28)
    a = model.features(canvases)
    assert a.shape == (3, 49, 32 + 2)  # 7 x 7 cells of 32 features and the cell's (x, y)
    h = torch.randn(3, 128)
    alpha, z = model.attend(a, h)
    assert (alpha > 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(3))
    torch.testing.assert_close(z, (alpha[:, :, None] * a).sum(1))
    with torch.no_grad():  # scores w^T tanh(...) all 0: uniform weights, the mean feature
        model.att_score.weight.zero_()
    alpha, z = model.attend(a, h)
    torch.testing.assert_close(alpha, torch.full((3, 49), 1 / 49))
    torch.testing.assert_close(z, a.mean(1))


def test_soft_attention_returns_its_weights_for_every_step_of_every_object() -> None:
    model = SoftAttention(28, n_outputs=2, n_steps=3, cell="gru")
    logits, weights = model(torch.rand(4, 1, 28, 28), return_attention=True)
    assert logits.shape == (4, 2, 10) and weights.shape == (4, 6, 7, 7)
    torch.testing.assert_close(weights.sum((2, 3)), torch.ones(4, 6))
    # The cells' coordinates: (x, y) of the first cell and the last, row-major.
    torch.testing.assert_close(model.cell_xy[0, 0], torch.tensor([-6 / 7, -6 / 7]))
    torch.testing.assert_close(model.cell_xy[0, -1], torch.tensor([6 / 7, 6 / 7]))


def test_pixels_read_per_image() -> None:
    assert FullyConnected(28).pixels_read == 784
    assert PaperCNN(60).pixels_read == SoftAttention(60).pixels_read == 3600
    # The localisation network's 32 x 32 pooled canvas, and a 28 x 28 crop per object.
    assert SpatialTransformer(60).pixels_read == 32 * 32 + 28 * 28
    assert SpatialTransformer(60, n_outputs=2, loc_size=20).pixels_read == 400 + 2 * 784


def digit_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` real digits (n, 1, 28, 28) with labels, and ``n`` canvases of two of them
    halved to 14 x 14 side by side, with the labels in reading order (n, 2)."""
    data = load_digits("digits", "train")
    x = torch.tensor(data.images[:n])[:, None]
    y = torch.tensor(data.labels[:n])
    small = torch.nn.functional.avg_pool2d(x, 2)
    pairs = torch.zeros(n, 1, 28, 28)
    pairs[:, :, 7:21, :14] = small
    pairs[:, :, 7:21, 14:] = small.roll(1, 0)
    return x, y, pairs, torch.stack([y, y.roll(1, 0)], 1)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_each_model_overfits_a_small_batch_of_real_digits(name: str, n_outputs: int) -> None:
    x, y, pairs, pair_labels = digit_pairs(16)
    canvases, labels = (x, y) if n_outputs == 1 else (pairs, pair_labels)
    torch.manual_seed(0)
    model = make_model(name, 28, n_outputs=n_outputs, **SMALL[name])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        logits = model(canvases)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 2.0  # ln 10 = 2.30 at the start
    assert losses[-1] < 0.25 * losses[0], losses[::20]


def test_bad_model_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"model must be one of \['cnn', 'fc', 'soft', 'stn'\]"):
        make_model("resnet", 28)
    with pytest.raises(ValueError, match=r"model 'stn' has no option\(s\) \['n_step'\]"):
        make_model("stn", 28, n_step=3)
    with pytest.raises(ValueError, match="n_outputs must be an int >= 1, got 0"):
        SoftAttention(28, n_outputs=0)
    with pytest.raises(ValueError, match="loc_size must be at most the canvas size 28, got 40"):
        SpatialTransformer(28, loc_size=40)
    with pytest.raises(ValueError, match="out_size must be at least 4 for 2 pooling"):
        SpatialTransformer(28, out_size=3)
    with pytest.raises(ValueError, match=r"init_scale must be a finite number in \(0.0, 1.0\]"):
        SpatialTransformer(28, init_scale=0.0)
    with pytest.raises(ValueError, match="cell must be one of"):
        SoftAttention(28, cell="rnn")
    with pytest.raises(ValueError, match="channels must be a non-empty list of ints"):
        SoftAttention(28, channels=[])
    with pytest.raises(ValueError, match="canvas must be at least 8 for 3 pooling"):
        SoftAttention(6, channels=[4, 4, 4])
    with pytest.raises(ValueError, match=r"expected canvases of shape \(B, 1, 28, 28\)"):
        SoftAttention(28)(torch.zeros(2, 1, 60, 60))
    with pytest.raises(ValueError, match=r"expected canvases of shape \(B, 1, 60, 60\)"):
        SpatialTransformer(60)(torch.zeros(2, 60, 60))
