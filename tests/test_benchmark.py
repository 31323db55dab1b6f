"""benchmark.py's measure: epochs set against the peaks around them, and FLOPs from the models' shapes."""
import time

import numpy as np
import pytest

from ssdgm.models import registry
from ssdgm.models.adgm import AuxiliaryDGM
from ssdgm.models.m2 import M2
from ssdgm.tools import benchmark
from ssdgm.training import settings


def test_each_epoch_is_set_against_the_mean_of_the_peaks_just_before_and_after_it():
    measured = iter([100.0, 50.0, 200.0, 80.0])
    seconds, shares, peaks = benchmark.time_against_peak(lambda: time.sleep(0.02), 1.0, lambda repeats: next(measured), 3)
    assert peaks == [100.0, 50.0, 200.0, 80.0]
    assert len(seconds) == 3 and all(s >= 0.02 for s in seconds)
    np.testing.assert_allclose(shares, [1.0 / s / p for s, p in zip(seconds, [75.0, 125.0, 140.0])])


def kernel_macs(layers):
    return sum(int(np.prod(w.shape)) for layer in layers for w in layer.weights if len(w.shape) == 2)


@pytest.mark.parametrize("likelihood, features, hidden", [("gaussian", 24, [300]), ("bernoulli", 784, [500])])
def test_m2_epoch_flops_are_six_per_weight_and_example_of_the_models_dense_layers(likelihood, features, hidden):
    model = M2(features, hidden, 50, likelihood=likelihood)
    classifier = kernel_macs(model.classifier.layers)
    encoder_x = int(np.prod(model.encoder.first.kernels[0].shape))  # once per image; the class adds a row
    per_class = (kernel_macs([model.encoder.out, *model.encoder.rest])
                 + int(np.prod(model.decoder.first.kernels[0].shape)) + kernel_macs([model.decoder.out, *model.decoder.rest]))
    macs = 100 * (1 * (classifier + encoder_x + per_class) + 499 * (classifier + encoder_x + 10 * per_class))
    _, _, gflop = benchmark.m2_epoch(features, hidden, likelihood)
    assert gflop == pytest.approx(6 * macs / 1e9)


@pytest.mark.parametrize("kind", ["adgm", "sdgm"])
def test_adgm_epoch_flops_count_once_per_image_what_no_class_reaches(kind):
    fast = settings.resolve(registry.get(kind), "fast", {})
    model = AuxiliaryDGM(784, fast["hidden"], fast["a_dim"], fast["z_dim"], kind=kind)

    def size(kernel):
        return int(np.prod(kernel.shape))

    def later(net):  # the layers after the first: run once per class when the first is
        return kernel_macs([*net.rest, net.out])
    # The first layers' kernels by what they read: a and x once per image, z once per class (y: a row).
    once_inputs = {"adgm": {"q_z": [0, 1], "p_x": [], "p_a": [0]}, "sdgm": {"q_z": [0, 1], "p_x": [0], "p_a": []}}[kind]
    class_inputs = {"adgm": {"p_x": [0], "p_a": [1]}, "sdgm": {"p_x": [1], "p_a": [0]}}[kind]
    once = kernel_macs(model.q_a.layers) + kernel_macs([model.q_y])
    once += sum(size(getattr(model, net).first.kernels[i]) for net, idx in once_inputs.items() for i in idx)
    per_class = later(model.q_z) + later(model.p_x) + later(model.p_a)
    per_class += sum(size(getattr(model, net).first.kernels[i]) for net, idx in class_inputs.items() for i in idx)
    n_unl = (50000 - 100) // fast["batches"]
    macs = fast["batches"] * fast["samples"] * (100 * (once + per_class) + n_unl * (once + 10 * per_class))
    _, factor, gflop = benchmark.adgm_epoch(kind, "fast", timed_steps=10)
    assert factor == fast["batches"] / 10
    assert gflop == pytest.approx(6 * macs / 1e9)


@pytest.mark.parametrize("flag", [["--rounds", "0"], ["--m1-batch", "0"], ["--threads", "-1"], ["--m2-features", "x"]])
def test_bad_flags_end_with_a_usage_error_before_any_timing(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(flag)
    assert exit_info.value.code == 2
    assert "must be an integer" in capsys.readouterr().err
