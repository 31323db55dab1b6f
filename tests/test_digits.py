"""Your own data: the .npz format and its checks, a Gaussian M1, and scikit-learn's digits
(`load_digits`) converted, trained on end to end, evaluated and drawn."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.datasets import load_digits

import run_analogy
import train_M1
import train_M2
from ssdgm import UserError
from ssdgm.data import images
from ssdgm.models import m1, m2
from ssdgm.models.blocks import MIN_PIXEL_LOGVAR
from ssdgm.models.trained import load_classifier
from ssdgm.tools import digits

tfd = tfp.distributions


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    digits.write_digits(str(path))
    return path


def test_load_digits_becomes_the_fixed_split_the_project_ships(digits_file):
    arrays = dict(np.load(digits_file))
    assert {k: v.shape for k, v in arrays.items()} == {
        "x_train": (1100, 8, 8), "y_train": (1100,), "x_valid": (200, 8, 8), "y_valid": (200,),
        "x_test": (497, 8, 8), "y_test": (497,)}
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].max() == 255
    original = load_digits()  # every image once, its levels 0-16 as bytes
    ours = np.concatenate([arrays[f"x_{s}"] for s in ("train", "valid", "test")]).reshape(len(original.images), -1)
    theirs = np.round(original.images * 255 / 16).astype(np.uint8).reshape(len(original.images), -1)
    assert np.array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))
    assert np.bincount(arrays["y_train"]).tolist() == [109, 112, 108, 112, 111, 112, 111, 109, 106, 110]  # stratified
    shipped = np.load(digits.DEFAULT_PATH)
    assert all(np.array_equal(shipped[k], v) for k, v in arrays.items())
    data = images.load(str(digits_file))
    assert (data.shape, data.n_classes, data.splits["train"][0].shape) == ((8, 8), 10, (1100, 64))
    np.testing.assert_allclose(data.splits["test"][0].max(), 1.0)


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_a_file_without_validation_images_validates_on_its_last_sixth(tmp_path):
    x = np.random.default_rng(0).random((60, 3, 2)).astype(np.float32)
    y = np.arange(60) % 3
    data = images.load(write(tmp_path / "own.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9]))
    assert len(data.splits["train"][0]) == 50 and len(data.splits["valid"][0]) == 10
    np.testing.assert_array_equal(data.splits["valid"][0], x[50:].reshape(10, 6))
    assert (data.shape, data.n_classes) == ((3, 2), 3)
    assert images.sizes(str(tmp_path / "own.npz")) == (50, 3)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("y_test"), "array y_test is missing"),
    (lambda a: a.pop("y_valid"), "array x_valid or y_valid is missing"),
    (lambda a: a.update(y_train=a["y_train"] * 2), "labels must be 0..K-1 with every class present"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "must hold integer labels"),
    (lambda a: a.update(y_test=a["y_test"] + 5), "y_test holds labels outside 0..2"),
    (lambda a: a.update(x_train=a["x_train"] * 3), "must be uint8 grey levels or floats in [0, 1]"),
    (lambda a: a.update(x_test=a["x_test"][:, :2]), "x_test's images are (2,), x_train's (4,)"),
    (lambda a: a.update(y_train=a["y_train"][:5]), "are not n images and their n labels"),
])
def test_a_bad_file_is_one_line(tmp_path, change, message):
    rng = np.random.default_rng(1)
    arrays = {f"x_{s}": rng.random((30, 4)).astype(np.float32) for s in ("train", "valid", "test")}
    arrays.update({f"y_{s}": np.arange(30) % 3 for s in ("train", "valid", "test")})
    change(arrays)
    with pytest.raises(UserError) as error:
        images.load(write(tmp_path / "bad.npz", **arrays))
    assert message in str(error.value)


def test_too_few_images_of_a_class_for_the_labels_asked_is_one_line(tmp_path, digits_file):
    with pytest.raises(UserError, match="needs 109 images of class 2, only 108 exist"):
        train_M2.main(["-train", "--model", "m2", "--data", str(digits_file), "--labels", "1090", "--epochs", "1",
                       "--out", str(tmp_path / "run")])
    with pytest.raises(UserError, match="at most 1100"):
        train_M2.main(["-train", "--model", "m2", "--data", str(digits_file), "--labels", "2000"])


def test_the_gaussian_elbo_is_the_densities_and_its_variance_has_a_floor():
    model = m1.M1(x_dim=5, hidden=(7,), z_dim=2, likelihood="gaussian")
    x = np.random.default_rng(2).random((3, 5)).astype(np.float32)
    eps = np.random.default_rng(3).standard_normal((3, 2)).astype(np.float32)
    bound, log_px, kl = m1.elbo(model, x, eps)
    mean, logvar = model.encode(x)
    z = mean + tf.exp(0.5 * logvar) * eps
    x_mean, x_logvar = tf.split(model.decode(z), 2, axis=-1)
    x_logvar = tf.maximum(x_logvar, MIN_PIXEL_LOGVAR)
    expected = tfd.Independent(tfd.Normal(x_mean, tf.exp(0.5 * x_logvar)), 1).log_prob(x)
    np.testing.assert_allclose(log_px, expected, rtol=1e-5)
    np.testing.assert_allclose(bound, log_px - kl, rtol=1e-6)
    out = model.decoder.layers[-1]
    out.bias.assign(np.concatenate([np.zeros(5), np.full(5, -100.0)]).astype(np.float32))
    out.kernel.assign(np.zeros_like(out.kernel))
    assert np.all(m1.elbo(model, np.zeros((1, 5), np.float32), eps[:1])[1] <= 5 * (-MIN_PIXEL_LOGVAR / 2))


def test_digits_train_and_evaluate_end_to_end(tmp_path, digits_file, capsys):
    """A Gaussian M1, M1+M2 on it, and M2 alone, a few epochs each; then the command line, the
    analogies in 8 x 8 and the Python API read what they wrote."""
    data = str(digits_file)
    m1_weights = str(tmp_path / "m1.npz")
    train_M1.main(["-train", "--data", data, "--recipe", "small", "--epochs", "2", "--eval-every", "1",
                   "--hidden", "32", "--out", str(tmp_path / "m1"), "--weights", m1_weights])
    train_M2.main(["-train", "--data", data, "--recipe", "small", "--labels", "50", "--epochs", "2", "--hidden", "16",
                   "--m1-weights", m1_weights, "--out", str(tmp_path / "m1m2")])
    train_M2.main(["-train", "--model", "m2", "--data", data, "--recipe", "small", "--labels", "100", "--epochs", "1",
                   "--warmup-steps", "20", "--hidden", "16", "--out", str(tmp_path / "m2")])
    m2_weights = tmp_path / "m2" / "digits_m2_labels100_seed0_small.npz"
    capsys.readouterr()
    train_M2.main(["--model", "m2", "--data", data, "--weights", str(m2_weights)])
    assert "test error" in capsys.readouterr().out
    run_analogy.main(["--data", data, "--weights", str(m2_weights), "--out", str(tmp_path / "analogy.png"), "--rows", "3"])
    assert (tmp_path / "conditional.png").exists()
    probabilities = load_classifier(str(m2_weights)).probabilities(np.load(data)["x_test"][:4])
    assert probabilities.shape == (4, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(UserError, match="an M1 of 64 inputs, for images of 784"):
        train_M2.main(["-train", "--labels", "100", "--m1-weights", m1_weights, "--subset", "200", "--epochs", "1",
                       "--out", str(tmp_path / "mnist")])


def test_the_baselines_score_a_labelled_split(digits_file):
    errors = digits.baselines(images.load(str(digits_file)), 50, 0)
    assert set(errors) == {"svm_rbf_c10", "logistic", "label_spreading_knn7"}
    assert all(0 < e < 0.3 for e in errors.values())


def test_the_pca_whitens_what_it_was_fitted_on_and_decodes_back():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((400, 3)) @ rng.standard_normal((3, 6)) * 0.1 + 0.5).astype(np.float32)
    full = images.fit_pca(x, 6)
    assert len(full.values) == 3  # the three directions of a rank-3 set; the constant ones dropped
    z = full.encode(x)
    np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(3), atol=1e-3)
    np.testing.assert_allclose(full.decode(z), x, atol=1e-4)
    assert np.all(np.diff(full.values) <= 0)
    share = images.fit_pca(x, 0.5)
    assert len(share.values) == 1 + np.searchsorted(np.cumsum(full.values) / full.values.sum(), 0.5)


def test_an_m1_on_pca_components_keeps_its_pca_and_draws_pixels(tmp_path, digits_file):
    args = ["-train", "--data", str(digits_file), "--recipe", "small", "--pca", "20", "--epochs", "1", "--hidden", "8",
            "--out", str(tmp_path / "run")]
    train_M1.main(args)
    model = m1.load(str(tmp_path / "run" / "digits_m1_small.npz"))
    assert (model.x_dim, model.image_dim) == (20, 64)
    grey = images.load(str(digits_file)).splits["test"][0][:5]
    np.testing.assert_allclose(model.inputs(grey), images.fit_pca(images.load(str(digits_file)).splits["train"][0], 20)
                               .encode(grey), atol=1e-4)
    assert model(model.inputs(grey)).shape == (5, 64)
    with pytest.raises(UserError, match="add --likelihood gaussian"):
        train_M1.parse_args(["-train", "--pca", "20"])


def test_a_gaussian_m2_on_pixels_reads_grey_values_and_is_an_m2(tmp_path, digits_file, capsys):
    train_M2.main(["-train", "--model", "m2", "--likelihood", "gaussian", "--data", str(digits_file), "--recipe", "small",
                   "--labels", "50", "--epochs", "1", "--warmup-steps", "5", "--hidden", "8", "--out", str(tmp_path / "g")])
    path = str(tmp_path / "g" / "digits_m2_labels50_seed0_small.npz")
    model, _ = m2.load(path, "")
    assert (model.likelihood, model.on_pixels) == ("gaussian", True)
    x = np.zeros((1, 64), np.float32)
    params = tf.concat([tf.zeros([1, 64]), tf.fill([1, 64], -100.0)], axis=-1)
    np.testing.assert_allclose(model.log_px(x, params), 64 * (-0.5 * np.log(2 * np.pi) - MIN_PIXEL_LOGVAR / 2), rtol=1e-5)
    capsys.readouterr()
    train_M2.main(["--model", "m2", "--data", str(digits_file), "--weights", path])
    assert "test error" in capsys.readouterr().out
    assert load_classifier(path).probabilities(np.load(digits_file)["x_test"][:3]).shape == (3, 10)
    with pytest.raises(UserError, match=r"--likelihood is not a setting of M1\+M2: m2 read it"):
        train_M2.parse_args(["-train", "--likelihood", "gaussian"])
