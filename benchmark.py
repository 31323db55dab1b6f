"""Times M1 and M2 training epochs here and compares their GFLOP/s with a large matrix product.

    python benchmark.py

The peak is the best rate of a 2048^3 float32 matrix product in the same run, so the ratio holds on a
noisy machine. FLOPs are those of the dense layers, from their shapes: 2 per multiply-add forward and
4 backward (gradients of inputs and of weights), so 6 per weight and example. Random grey images
stand in for MNIST: timing does not depend on the pixel values.
"""
import argparse
import time

from common import quiet_tensorflow

quiet_tensorflow()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import train_M1  # noqa: E402
import train_M2  # noqa: E402
from models.m1 import M1  # noqa: E402
from models.m2 import M2  # noqa: E402


def best_time(fn, repeats):
    fn()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(n=2048, repeats=10):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    f = tf.function(lambda: tf.matmul(a, b), jit_compile=True)
    return 2 * n ** 3 / best_time(lambda: f().numpy(), repeats) / 1e9


def chain_macs(sizes):
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def m1_epoch(batch_size, hidden, z_dim=50, n=50_000, repeats=3):
    """Seconds and GFLOP of one epoch of train_M1's step function."""
    model = M1(hidden=hidden, z_dim=z_dim)
    optimizer = keras.optimizers.Adam(3e-4)
    optimizer.build(model.trainable_variables)
    x = tf.constant(np.random.default_rng(0).random((n, 784), dtype=np.float32))
    steps = train_M1.make_train_steps(model, optimizer, x, tf.random.Generator.from_seed(0))
    batches = tf.constant(np.arange(n // batch_size * batch_size, dtype=np.int32).reshape(-1, batch_size))
    seconds = best_time(lambda: steps(batches).numpy(), repeats)
    macs = chain_macs([784, *hidden, 2 * z_dim]) + chain_macs([z_dim, *hidden, 784])
    return seconds, 6 * macs * n / 1e9


def m2_epoch(n_features, hidden, n_lab=1, n_unl=499, steps=100, z_dim=50, k=10, repeats=3):
    """Seconds and GFLOP of one epoch of train_M2's step on M1 features (1 + 499, 100 steps)."""
    n = (n_lab + n_unl) * steps
    rng = np.random.default_rng(0)
    features = train_M2.Features.__new__(train_M2.Features)
    features.model = "m1m2"
    features.train_loc = rng.standard_normal((n, n_features)).astype(np.float32)
    features.train_logvar = np.full((n, n_features), -2.0, np.float32)
    model = M2(n_features, hidden, z_dim)
    optimizer = keras.optimizers.Adam(3e-4)
    optimizer.build(model.trainable_variables)
    y = rng.integers(0, k, n).astype(np.int32)
    step = train_M2.make_train_step(model, optimizer, features, y, train_M2.make_rng(0), 50.0)
    order = np.arange(n, dtype=np.int32).reshape(steps, -1)
    batches = [(tf.constant(b[:n_lab]), tf.constant(b[n_lab:])) for b in order]

    def epoch():
        for lab, unl in batches:
            out = step(lab, unl)
        out.numpy()
    seconds = best_time(epoch, repeats)
    classifier = chain_macs([n_features, *hidden, k])
    encoder_x = n_features * hidden[0]  # once per example: the class enters as one added row
    encoder_rest = chain_macs([*hidden, 2 * z_dim])
    decoder = chain_macs([z_dim, *hidden, 2 * n_features])
    per_labelled = classifier + encoder_x + encoder_rest + decoder
    per_unlabelled = classifier + encoder_x + k * (encoder_rest + decoder)
    macs = steps * (n_lab * per_labelled + n_unl * per_unlabelled)
    return seconds, 6 * macs / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m1-batch", type=int, default=100, help="M1 minibatch size (default 100)")
    p.add_argument("--m2-features", type=int, default=20, help="active M1 units fed to M2 (default 20)")
    args = p.parse_args()
    peak = matmul_peak()
    print(f"float32 matmul 2048^3: {peak:6.1f} GFLOP/s (practical peak, {tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads)")
    rows = [("M1 epoch, 784-500-500-50, batch %d" % args.m1_batch, m1_epoch(args.m1_batch, [500, 500])),
            ("M2 epoch, %d-300-50, 1 + 499 x 100" % args.m2_features, m2_epoch(args.m2_features, [300]))]
    for name, (seconds, gflop) in rows:
        print(f"{name}: {seconds:6.2f} s, {gflop:6.1f} GFLOP, {gflop / seconds:6.1f} GFLOP/s, "
              f"{100 * gflop / seconds / peak:5.1f}% of peak")
    print(f"matmul peak again: {matmul_peak():6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
