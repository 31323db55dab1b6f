"""ADGM and SDGM on tiny dimensions: the bounds against densities written out, the label sum against a
loop, which variables each network reads, and a few steps that raise the objective."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import train_M2
from ssdgm import UserError
from ssdgm.data import mnist
from ssdgm.data.batches import class_sorted_minibatches, minibatches
from ssdgm.models import adgm, blocks
from ssdgm.models.adgm import AuxiliaryDGM
from ssdgm.models.blocks import BatchNorm
from ssdgm.models.features import Features
from ssdgm.models.trained import load_classifier
from ssdgm.models.weights import save_weights

tfd = tfp.distributions
KINDS = ["adgm", "sdgm"]
# The models whose bounds are checked: the paper's two, and the ADGM of its authors' first code.
FORMS = KINDS + ["first_code"]


def form(kind):
    """AuxiliaryDGM's arguments for one of FORMS."""
    return {"kind": "adgm", "first_code": True} if kind == "first_code" else {"kind": kind}


def tiny(kind, seed=0):
    keras.utils.set_random_seed(seed)
    model = AuxiliaryDGM(x_dim=6, hidden=(5, 4), a_dim=2, z_dim=3, **form(kind))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0, 0.25, v.shape).astype(np.float32))
    return model


def pixels(n, seed=1):
    return (np.random.default_rng(seed).random((n, 6)) < 0.4).astype(np.float32)


def normal(mean_logvar):
    mean, logvar = mean_logvar
    return tfd.Independent(tfd.Normal(mean, tf.exp(0.5 * logvar)), 1)


@pytest.mark.parametrize("kind", FORMS)
def test_labelled_bound_is_the_expected_log_ratio_of_the_joint_to_q(kind):
    """L(x, y) with its closed-form KL and entropy, against E_q[log p(x, y, z, a) - log q(a, z|x, y)]
    with every density evaluated at sampled a and z, over 20000 draws."""
    model = tiny(kind)
    x, y = pixels(2), tf.one_hot([3, 7], 10)
    draws = 20000
    rng = np.random.default_rng(2)
    eps_a = rng.standard_normal((draws, 2, 2)).astype(np.float32)
    eps_z = rng.standard_normal((draws, 2, 3)).astype(np.float32)
    got, _ = adgm.labelled_bound(model, x, y, eps_a, eps_z)

    q_a = normal(model.encode_a(x))
    a = q_a.mean() + q_a.stddev() * eps_a
    q_z = normal(model.encode_z(a, x, y))
    z = q_z.mean() + q_z.stddev() * eps_z
    log_px = tfd.Independent(tfd.Bernoulli(logits=model.decode_x(a, z, y), dtype=tf.float32), 1).log_prob(x)
    if kind == "first_code":
        log_pa = tfd.Independent(tfd.Normal(tf.zeros(2), 1.0), 1).log_prob(a)
    else:
        log_pa = normal(model.decode_a(x, z, y)).log_prob(a)
    log_pz = tfd.Independent(tfd.Normal(tf.zeros(3), 1.0), 1).log_prob(z)
    ratio = log_px + log_pa + log_pz - np.log(10) - q_a.log_prob(a) - q_z.log_prob(z)
    expected = tf.reduce_mean(ratio, axis=0)
    spread = tf.math.reduce_std(ratio, axis=0) / np.sqrt(draws)
    assert np.all(np.abs(got - expected) < 4 * spread + 1e-3), (got, expected, spread)


def test_entropy_of_a_is_the_gaussians():
    logvar = tf.constant([[0.3, -1.2, 2.0], [0.0, 0.5, -0.7]])
    expected = tf.reduce_sum(tfd.Normal(0.0, tf.exp(0.5 * logvar)).entropy(), axis=-1)
    np.testing.assert_allclose(adgm.gaussian_entropy(logvar), expected, rtol=1e-6)


@pytest.mark.parametrize("kind", FORMS)
def test_unlabelled_bound_equals_an_explicit_loop_over_labels_and_draws(kind):
    model = tiny(kind)
    x = pixels(4)
    rng = np.random.default_rng(3)
    eps_a = rng.standard_normal((2, 4, 2)).astype(np.float32)  # two draws of a
    eps_z = rng.standard_normal((10, 2, 4, 3)).astype(np.float32)
    got = adgm.unlabelled_bound(model, x, eps_a, eps_z)[0]

    a, entropy_a = adgm.sample_a(model, x, eps_a)
    expected = entropy_a.numpy().astype(np.float64)
    qy = [tf.nn.softmax(model.classify_given(a[s], x)).numpy() for s in range(2)]
    bound = [[adgm.bound_given_a(model, x, tf.one_hot([k] * 4, 10), a[s], eps_z[k, s])[0].numpy() for k in range(10)]
             for s in range(2)]
    for k in range(10):
        if kind == "first_code":  # q(y|a, x) and the bound averaged over the draws first, as that code
            q, b = (qy[0][:, k] + qy[1][:, k]) / 2, (bound[0][k] + bound[1][k]) / 2
            expected += q * (b - np.log(q))
        else:
            expected += sum(qy[s][:, k] * (bound[s][k] - np.log(qy[s][:, k])) for s in range(2)) / 2
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("kind", FORMS)
def test_unlabelled_bound_is_finite_for_a_certain_classifier(kind):
    """q(y|a, x) of 0 in float32 for most classes (a trained classifier) leaves U(x) finite."""
    model = tiny(kind)
    model.q_y.out.bias.assign(np.array([200.0] + [0.0] * 9, np.float32))
    rng = np.random.default_rng(5)
    eps_a = rng.standard_normal((2, 4, 2)).astype(np.float32)
    eps_z = rng.standard_normal((10, 2, 4, 3)).astype(np.float32)
    assert np.all(np.isfinite(adgm.unlabelled_bound(model, pixels(4), eps_a, eps_z)[0]))


@pytest.mark.parametrize("kind", KINDS)
def test_each_network_reads_what_its_model_conditions_on(kind):
    """p(x|.) reads a only in the SDGM, p(a|.) reads x only in the ADGM."""
    model = tiny(kind)
    x, y = pixels(3), tf.one_hot([1, 2, 3], 10)
    a, z = tf.random.normal([3, 2]), tf.random.normal([3, 3])
    changes_x = not np.allclose(model.decode_x(a, z, y), model.decode_x(a + 1.0, z, y))
    changes_a = not np.allclose(model.decode_a(x, z, y)[0], model.decode_a(1.0 - x, z, y)[0])
    assert (changes_x, changes_a) == ((False, True) if kind == "adgm" else (True, False))


def test_first_code_is_the_adgm_of_its_authors_first_code():
    """q(z|y, x) does not read a, p(a) is N(0, I) with no network, and q(a|x) is not trained."""
    model = tiny("first_code")
    x, y = pixels(3), tf.one_hot([1, 2, 3], 10)
    a, z = tf.random.normal([3, 2]), tf.random.normal([3, 3])
    np.testing.assert_array_equal(model.encode_z(a, x, y)[0], model.encode_z(a + 1.0, x, y)[0])
    assert not np.allclose(model.encode_z(a, x, y)[0], model.encode_z(a, 1.0 - x, y)[0])
    assert [v.numpy().tolist() for v in model.decode_a(x, z, y)] == [[0.0, 0.0], [0.0, 0.0]]
    assert model.p_a is None and not any(v.path.startswith("q_a") for v in model.trainable_variables)
    assert model.get_config()["first_code"] and model.get_config()["fixed_q_a"]
    with pytest.raises(ValueError, match="kind 'adgm' only"):
        AuxiliaryDGM(x_dim=6, hidden=(5,), a_dim=2, z_dim=3, kind="sdgm", first_code=True)
    config = train_M2.parse_args(["-train", "--model", "adgm", "--first-code"]).settings
    assert config["first_code"] and config["fixed_q_a"]  # the record says q(a|x) was not trained


def test_classify_averages_q_y_over_fixed_draws_of_a():
    model = tiny("adgm")
    x = pixels(5)
    first = model.classify(x).numpy()
    np.testing.assert_array_equal(first, model.classify(x).numpy())
    np.testing.assert_allclose(np.exp(first).sum(axis=1), 1.0, rtol=1e-5)
    assert blocks.error_rate(model, x, np.zeros(5, int)) == np.mean(np.argmax(first, axis=1) != 0)


@pytest.mark.parametrize("kind, batchnorm", [("adgm", False), ("adgm", True), ("sdgm", False), ("sdgm", True),
                                             ("first_code", False)])
def test_a_few_steps_raise_the_objective(kind, batchnorm):
    keras.utils.set_random_seed(0)
    model = AuxiliaryDGM(x_dim=6, hidden=(16,), a_dim=2, z_dim=3, batchnorm=batchnorm, **form(kind))
    x = np.random.default_rng(4).random((40, 6)).astype(np.float32)
    labels = np.arange(40) % 10
    inputs = Features("pixels", x, np.zeros((40, 0), np.float32))
    optimizer = keras.optimizers.Adam(3e-2)
    rng = tf.random.Generator.from_seed(0)
    step = tf.function(adgm.make_train_step(model, optimizer, inputs, labels, rng, alpha=0.1, n_labelled=10,
                                            samples=2))
    lab, unl = tf.range(10), tf.range(10, 40)
    losses = [float(step(lab, unl)["loss"]) for _ in range(60)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5, losses


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batchnorm", [False, True])
def test_fixed_q_a_keeps_its_initial_weights_and_is_rebuilt_fixed(kind, batchnorm, tmp_path):
    """With batchnorm, q(a|x)'s moving averages stay too (the others' move), and so q(a|x) itself."""
    keras.utils.set_random_seed(0)
    model = AuxiliaryDGM(x_dim=6, hidden=(8,), a_dim=2, z_dim=3, kind=kind, fixed_q_a=True, batchnorm=batchnorm)
    before = [v.numpy() for v in model.weights]
    x = pixels(20)
    optimizer = keras.optimizers.Adam(1e-2)
    step = adgm.make_train_step(model, optimizer, Features("pixels", x, np.zeros((20, 0), np.float32)),
                                np.arange(20) % 10, tf.random.Generator.from_seed(0), alpha=0.1, n_labelled=10)
    q_a_before = model.encode_a(x, training=True)
    for _ in range(3):
        step(tf.range(10), tf.range(10, 20))
    np.testing.assert_array_equal(model.encode_a(x, training=True), q_a_before)
    fixed = {id(v) for v in model.q_a.weights}
    for v, old in zip(model.weights, before):
        assert np.array_equal(v.numpy(), old) == (id(v) in fixed), v.path
    path = str(tmp_path / "fixed.npz")
    save_weights(path, model, model.get_config(), {})
    again, _ = adgm.load(path, "")
    assert not again.q_a.trainable and len(again.trainable_variables) == len(model.trainable_variables)


@pytest.mark.parametrize("kind", KINDS)
def test_batchnorm_trains_on_batch_statistics_and_evaluates_on_their_averages(kind, tmp_path):
    """Training steps move every network's moving averages; evaluation reads them, so an image's
    classification does not depend on the images beside it; the weights file keeps them."""
    keras.utils.set_random_seed(0)
    model = AuxiliaryDGM(x_dim=6, hidden=(8, 8), a_dim=2, z_dim=3, kind=kind, batchnorm=True)
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, BatchNorm)]
    assert len(norms) == 10  # two hidden layers in each of the five networks
    x = pixels(20)
    step = adgm.make_train_step(model, keras.optimizers.Adam(1e-2), Features("pixels", x, np.zeros((20, 0), np.float32)),
                                np.arange(20) % 10, tf.random.Generator.from_seed(0), alpha=0.1, n_labelled=10)
    step(tf.range(10), tf.range(10, 20))
    assert all(not np.allclose(norm.moving_mean.numpy(), 0.0) for norm in norms)
    others = np.concatenate([x[:3], pixels(17, seed=5)])
    np.testing.assert_allclose(model.classify(x)[:3], model.classify(others)[:3], atol=1e-5)
    path = str(tmp_path / "bn.npz")
    save_weights(path, model, model.get_config(), {})
    again, _ = adgm.load(path, "")
    np.testing.assert_allclose(again.classify(x), model.classify(x), atol=1e-6)


def test_auxiliary_spread_is_zero_for_a_collapsed_q_a_and_grows_with_what_a_tells_apart():
    model = tiny("adgm")
    x = pixels(50)
    out = model.q_a.layers[-1]
    kernel, bias = out.kernel.numpy(), out.bias.numpy()
    out.kernel.assign(np.concatenate([np.zeros_like(kernel[:, :2]), kernel[:, 2:]], axis=1))
    assert adgm.auxiliary_spread(model, x) == pytest.approx(0.0, abs=1e-6)
    out.kernel.assign(np.concatenate([kernel[:, :2], np.zeros_like(kernel[:, 2:])], axis=1))
    out.bias.assign(np.concatenate([bias[:2], np.full(2, -10.0, np.float32)]))  # sd e^-5: a nearly exact
    mean = model.encode_a(x)[0].numpy()
    assert adgm.auxiliary_spread(model, x) == pytest.approx(np.mean(mean.std(axis=0) / np.exp(-5.0)), rel=1e-4)
    assert adgm.auxiliary_spread(model, x) > 1


def test_saved_weights_evaluate_from_the_command_line(tmp_path, capsys):
    model = AuxiliaryDGM(x_dim=784, hidden=(8,), a_dim=2, z_dim=3, kind="sdgm", batchnorm=True)
    path = str(tmp_path / "sdgm.npz")
    save_weights(path, model, model.get_config(), {})
    train_M2.main(["--model", "sdgm", "--subset", "200", "--weights", path])
    x, y = mnist.load_splits(subset=200)["test"]
    assert f"test error {100 * blocks.error_rate(model, x, y):.2f}%" in capsys.readouterr().out


def test_minibatches_with_labelled_per_batch_take_the_labelled_images_in_turn():
    lab, unl = minibatches(np.arange(30), np.arange(30, 130), 10, seed=0, labelled_per_batch=20)
    assert lab.shape == (10, 20) and unl.shape == (10, 10)
    order = lab.reshape(-1)
    assert sorted(order[:30]) == list(range(30)) and np.array_equal(order[30:60], order[:30])
    every, _ = minibatches(np.arange(100), np.arange(100, 600), 5, seed=0, labelled_per_batch=100)
    assert all(sorted(row) == list(range(100)) for row in every)


def test_authors_recipe_weighs_the_labels_as_their_code():
    """Their beta = 0.01 n, n = 60,000 images + 600 minibatches * 100 labelled copies = 1200; fast: 500."""
    beta = {}
    for recipe in ("authors", "fast"):
        config = train_M2.parse_args(["--model", "adgm", "--recipe", recipe]).settings
        beta[recipe] = blocks.label_weight(config["alpha"], mnist.N_TRAIN, config["labels"])
    assert beta == {"authors": 1200.0, "fast": 500.0}


def test_sdgm_recipes_weigh_the_labels_as_their_later_code():
    """Their later SDGM code: beta = 0.1 n / n_l with n = 60,000 images, so 60 at N=100, both recipes."""
    for recipe in ("authors", "fast"):
        config = train_M2.parse_args(["--model", "sdgm", "--recipe", recipe]).settings
        assert blocks.label_weight(config["alpha"], mnist.N_TRAIN, config["labels"]) == pytest.approx(60.0)
        assert (config["samples"], config["lr"]) == (1, 3e-4)


@pytest.mark.parametrize("argv, message", [
    (["-train", "--samples", "5"], "--samples is not a setting of M1+M2: adgm, sdgm read it"),
    (["-train", "--model", "m2", "--fixed-q-a"], "--fixed-q-a is not a setting of M2 on pixels: adgm, sdgm"),
    (["--model", "adgm", "--fixed-q-a"], "--fixed-q-a is a training setting: add -train"),
    (["-train", "--model", "m2", "--batchnorm"], "--batchnorm is not a setting of M2 on pixels: adgm, sdgm"),
    (["-train", "--model", "sdgm", "--first-code"], "--first-code is not a setting of SDGM: adgm read it"),
    (["--model", "sdgm", "--samples", "5"], "--samples is a training setting: add -train"),
    (["--model", "adgm", "--recipe", "styles"], "--recipe styles: adgm has the recipes fast, authors"),
    (["--model", "adgm", "--m1-weights", "weights/M1/m1.npz"], "--m1-weights is for a model that reads M1's features: adgm reads pixels"),
    (["--model", "adgm", "--weights", "absent.npz"], "no weights; run `python train_M2.py -train --model adgm"),
])
def test_adgm_flags_are_refused_with_one_message(argv, message):
    """The same error path as every flag (tests/test_cli.py runs it as a process: one line, exit 2)."""
    with pytest.raises(UserError) as error:
        train_M2.main(argv)
    assert message in str(error.value)


@pytest.mark.parametrize("kind", KINDS)
def test_load_classifier_reads_a_saved_auxiliary_model_as_its_classify(kind, tmp_path):
    keras.utils.set_random_seed(0)
    model = AuxiliaryDGM(x_dim=784, hidden=(8,), a_dim=2, z_dim=3, kind=kind)
    images = np.random.default_rng(3).integers(0, 256, (4, 784)).astype(np.uint8)
    expected = tf.nn.softmax(model.classify((images / 255.0).astype(np.float32))).numpy()
    path = str(tmp_path / f"{kind}.npz")
    save_weights(path, model, model.get_config(), {})
    np.testing.assert_allclose(load_classifier(path).probabilities(images), expected, atol=1e-5)


def authors_mean_over_draws(t):
    """Their unlabelled bound's mean over draws, written out as their code has it (models/adgmssl.py,
    build_model): rows in (class, image, draw) order, reshaped to (classes, draws, 1, images),
    transposed to (images, draws, 1, classes) and averaged over draws. t: [K, S, B] -> [B, K]."""
    k, s, b = t.shape
    rows = np.transpose(t, (0, 2, 1)).reshape(-1)
    return rows.reshape(k, s, 1, b).transpose(3, 1, 2, 0).mean(axis=(1, 2))


def test_authors_draw_mix_is_their_reshape_and_mixes_other_images():
    t = np.random.default_rng(6).standard_normal((10, 10, 100)).astype(np.float32)
    mixed = tf.reduce_mean(adgm.authors_draw_mix(t), axis=1).numpy()
    np.testing.assert_allclose(mixed.T, authors_mean_over_draws(t), rtol=1e-5, atol=1e-6)
    # At ten draws and 100 images, row j averages draw j % 10 of images 10 s + j // 10, s = 0..9.
    j = 37
    np.testing.assert_allclose(mixed[:, j], t[:, j % 10, [10 * s + j // 10 for s in range(10)]].mean(axis=1), rtol=1e-5)
    # A permutation of the (image, draw) entries, so the batch's total is kept; at one draw it is exact.
    np.testing.assert_array_equal(np.sort(adgm.authors_draw_mix(t).numpy().ravel()), np.sort(t.ravel()))
    one = t[:, :1]
    np.testing.assert_array_equal(adgm.authors_draw_mix(one), one)


def test_unlabelled_bound_with_the_authors_mix_is_theirs_and_exact_at_one_draw():
    model = tiny("first_code")
    x = pixels(4)
    rng = np.random.default_rng(7)
    for draws in (1, 2):
        eps_a = rng.standard_normal((draws, 4, 2)).astype(np.float32)
        eps_z = rng.standard_normal((10, draws, 4, 3)).astype(np.float32)
        honest = adgm.unlabelled_bound(model, x, eps_a, eps_z)[0].numpy()
        mixed = adgm.unlabelled_bound(model, x, eps_a, eps_z, authors_mix=True)[0].numpy()
        if draws == 1:
            np.testing.assert_allclose(mixed, honest, rtol=1e-6)
            continue
        a, entropy_a = adgm.sample_a(model, x, eps_a)
        bound = adgm.bound_given_a(model, x, adgm.every_class(10)[:, None], a, eps_z)[0].numpy()  # [K, S, B]
        entropy = np.broadcast_to(entropy_a.numpy(), (10, draws, 4))
        lb = authors_mean_over_draws(bound + entropy)  # [B, K], their lb_u with -log q(a|x) inside
        qy = np.mean([tf.nn.softmax(model.classify_given(a[s], x)).numpy() for s in range(draws)], axis=0)
        np.testing.assert_allclose(mixed, np.sum(qy * (lb - np.log(qy)), axis=1), rtol=1e-5)
        assert not np.allclose(mixed, honest)
    with pytest.raises(ValueError, match="first_code models only"):
        adgm.unlabelled_bound(tiny("adgm"), x, eps_a, eps_z, authors_mix=True)


def test_class_sorted_minibatches_are_the_authors_one_digit_halves():
    """On MNIST's 60,000 training and validation images, as their code: 600 halves of 100 in class
    order, 592 of them one digit; every image once, every labelled image in every minibatch."""
    y = np.concatenate([mnist.load_splits()[k][1] for k in ("train", "valid")])
    labelled = mnist.labelled_split(y[:mnist.N_TRAIN], 100, 0)[0]
    lab, unl = class_sorted_minibatches(labelled, y, 100)
    assert lab.shape == unl.shape == (600, 100)
    assert all(sorted(row) == sorted(labelled) for row in lab)
    assert sorted(unl.ravel()) == list(range(60_000))
    assert sum(len(set(y[row])) == 1 for row in unl) == 592
    with pytest.raises(UserError, match="do not divide"):
        class_sorted_minibatches(labelled, y[:150], 100)


def test_authors_leak_trains_on_their_pool_and_stays_out_of_weights(tmp_path):
    """Refused without --first-code; by default written under temp/, never weights/; a short run's
    pool holds the validation images and its record says the option was on."""
    with pytest.raises(UserError, match="--authors-leak needs --first-code: add it"):
        train_M2.parse_args(["-train", "--model", "adgm", "--authors-leak"])
    args = train_M2.parse_args(["-train", "--model", "adgm", "--first-code", "--authors-leak"])
    assert f"{os.sep}temp{os.sep}" in args.weights and args.weights.startswith(args.out)
    out = tmp_path / "leak"
    train_M2.main(["-train", "--model", "adgm", "--first-code", "--authors-leak", "--samples", "2", "--subset", "200",
                   "--epochs", "1", "--hidden", "8", "--out", str(out)])
    record = json.loads((out / "adgm_labels100_seed0_authors_leak.json").read_text())
    assert (record["authors_leak"], record["batches"], record["n_total"]) == (True, 4, 200)
    assert "100 labelled, 400 unlabelled, 4 minibatches of 100 + 100" in (out / "train.log").read_text()
