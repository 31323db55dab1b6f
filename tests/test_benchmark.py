"""benchmark.py's measure: epochs set against the peaks around them, and FLOPs from the models' shapes."""
import time

import numpy as np
import pytest

import benchmark
from models.m2 import M2


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
    encoder_x = int(np.prod(model.encoder.first.kernel_x.shape))  # once per image; the class adds a row
    per_class = (kernel_macs([model.encoder.out, *model.encoder.rest])
                 + int(np.prod(model.decoder.first.kernel_x.shape)) + kernel_macs([model.decoder.out, *model.decoder.rest]))
    macs = 100 * (1 * (classifier + encoder_x + per_class) + 499 * (classifier + encoder_x + 10 * per_class))
    _, gflop = benchmark.m2_epoch(features, hidden, likelihood)
    assert gflop == pytest.approx(6 * macs / 1e9)


@pytest.mark.parametrize("flag", [["--rounds", "0"], ["--m1-batch", "0"], ["--threads", "-1"], ["--m2-features", "x"]])
def test_bad_flags_end_with_a_usage_error_before_any_timing(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(flag)
    assert exit_info.value.code == 2
    assert "must be an integer" in capsys.readouterr().err
