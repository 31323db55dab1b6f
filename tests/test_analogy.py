import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, sharing

import run_analogy
from ssdgm import UserError
from ssdgm.data import mnist
from ssdgm.data.batches import minibatches
from ssdgm.models import m2, trained
from ssdgm.models.features import load_features
from ssdgm.models.m2 import M2
from ssdgm.models.trained import load_classifier
from ssdgm.models.weights import save_weights
from ssdgm.training import loop

SHARES_PIXEL_M2 = sharing("pixel_m2")


@pytest.fixture(scope="session")
def pixel_m2(tmp_path_factory):
    """A small pixel M2 trained for 300 steps on 3000 labelled images, saved as train_M2 would."""
    keras.utils.set_random_seed(0)
    x, y = mnist.load_splits()["train"]
    x, y = x[:3000], y[:3000]
    features = load_features("pixels", {"train": (x, y), "valid": (x, y), "test": (x, y)})
    model = M2(784, (128,), 8, likelihood="bernoulli", init="code")
    optimizer = keras.optimizers.Adam(2e-3)
    optimizer.build(model.trainable_variables)
    step = m2.make_train_step(model, optimizer, features, y, loop.make_rng(0, "threefry"), 0.1, 3000)
    steps = loop.compile_steps(step, model.trainable_variables)
    lab, unl = minibatches(np.arange(3000), np.arange(0), 30, seed=0)
    for _ in range(10):
        steps(tf.constant(lab), tf.constant(unl))
    path = tmp_path_factory.mktemp("pixel") / "m2.npz"
    save_weights(str(path), model, model.get_config(), {"m1_sha256": ""})
    return path


@SHARES_PIXEL_M2
def test_figures_have_the_right_shape_range_and_repeat_with_the_seed(pixel_m2, tmp_path):
    decoder = trained.load(str(pixel_m2), None, "")
    x, y = mnist.load_splits()["test"]
    rows = mnist.one_per_class(y, 4, seed=1)
    assert y[rows].tolist() == [0, 1, 2, 3]
    grid = decoder.analogies(x[rows], y[rows])
    assert grid.shape == (4, 11, 784) and 0 <= grid.min() and grid.max() <= 1
    np.testing.assert_array_equal(grid[:, 0], x[rows])
    samples = decoder.conditional_samples(6, seed=2)
    assert samples.shape == (10, 6, 784)
    np.testing.assert_array_equal(samples, decoder.conditional_samples(6, seed=2))
    assert not np.array_equal(samples, decoder.conditional_samples(6, seed=3))

    out = tmp_path / "a.png"
    run_analogy.main(["--weights", str(pixel_m2), "--out", str(out), "--seed", "5"])
    first = (out.read_bytes(), (tmp_path / "conditional.png").read_bytes())
    run_analogy.main(["--weights", str(pixel_m2), "--out", str(out), "--seed", "5"])
    assert (out.read_bytes(), (tmp_path / "conditional.png").read_bytes()) == first


@SHARES_PIXEL_M2
@pytest.mark.parametrize("which, at_least", [("tiny", 0.9), ("shipped", 0.99)])
def test_own_label_reconstructs_a_test_image_better_than_other_labels(pixel_m2, which, at_least):
    shipped = os.path.join(ROOT, "weights", "M2", "m2_labelsall_seed0_authors.npz")
    decoder = trained.load(str(pixel_m2) if which == "tiny" else shipped, None, "")
    x, y = mnist.load_splits()["test"]
    x, y = x[:200], y[:200]
    grid = decoder.analogies(x, y)[:, 1:]  # [200, 10 classes, 784]
    error = np.mean((grid - x[:, None, :]) ** 2, axis=2)  # [200, 10]
    own = error[np.arange(200), y]
    others = (error.sum(axis=1) - own) / 9
    assert np.mean(own < others) >= at_least


def test_missing_weights_name_the_training_command(tmp_path):
    with pytest.raises(UserError, match="python train_M2.py -train --model m2 --labels all --recipe authors"):
        run_analogy.main(["--weights", str(tmp_path / "none.npz")])


def test_stacked_model_decodes_through_m1_on_the_shipped_weights(tmp_path):
    decoder = trained.load(os.path.join(ROOT, "weights", "M2", "m1m2_labels100_seed0.npz"),
                              os.path.join(ROOT, "weights", "M1", "m1.npz"), "")
    x, y = mnist.load_splits()["test"]
    grid = decoder.analogies(x[:3], y[:3])
    assert grid.shape == (3, 11, 784) and 0 <= grid.min() and grid.max() <= 1
    assert decoder.conditional_samples(4, seed=0).shape == (10, 4, 784)
    run_analogy.main(["--model", "m1m2", "--rows", "3", "--samples", "4", "--out", str(tmp_path / "a.png")])
    assert (tmp_path / "a.png").exists() and (tmp_path / "conditional.png").exists()


def test_the_shipped_styles_grid_draws_each_class_in_every_style(tmp_path):
    """Figure 1(a) from the shipped 2-D z M2: the shipped M1+M2 classifier reads nearly every image of
    a class's panel as that class, although z sweeps the whole grid."""
    model = trained.load(os.path.join(ROOT, "weights", "M2", "m2_labelsall_seed0_styles.npz"))
    grids = model.style_grids(6)  # [10, 36, 784]
    assert grids.shape == (10, 36, 784) and 0 <= grids.min() and grids.max() <= 1
    read = load_classifier().probabilities(grids.reshape(-1, 784)).argmax(axis=1).reshape(10, 36)
    assert np.mean(read == np.arange(10)[:, None]) >= 0.9
    run_analogy.main(["--styles", "6", "--out", str(tmp_path / "analogy.png")])
    assert (tmp_path / "styles.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(UserError, match="--styles: a grid of styles needs a 2-D z; this M2's is 50-D"):
        run_analogy.main(["--styles", "--weights", os.path.join(ROOT, "weights", "M2", "m2_labelsall_seed0_authors.npz"),
                          "--out", str(tmp_path / "analogy.png")])
