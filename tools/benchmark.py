"""Times M1, M2 and ADGM training epochs here and compares their GFLOP/s with a large matrix product.

    python tools/benchmark.py
    python tools/benchmark.py --adgm --threads 2      # also an ADGM and an SDGM epoch, of the fast recipe

The peak is the best rate of a 2048^3 float32 matrix product. The machines here are shared, and
their speed drifts by up to 20% within minutes, so each epoch is timed several times (--rounds),
each time between two measures of the peak, and a row gives the median over the rounds of the
epoch's seconds and of its share of the peak measured around it, with the share's range. FLOPs are
those of the dense layers, from their shapes: 2 per multiply-add forward and 4 backward (gradients of
inputs and of weights), so 6 per weight and example. Random grey images stand in for MNIST: timing
does not depend on the pixel values.
"""
import time

import numpy as np

from ssdgm.models import adgm, blocks, m1, m2, registry
from ssdgm.models.features import Features
from ssdgm.tf import keras, tf
from ssdgm.training import loop, settings
from ssdgm.training.cli import ArgumentParser, count, positive_int, run_cli


def recipe_settings(model, name=None):
    """The settings of a model's recipe (its default recipe if name is None)."""
    return settings.resolve(registry.get(model), name, {})


def best_time(fn, repeats):
    """The least of `repeats` wall-clock timings of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_matmul_peak(n=2048):
    """peak(repeats) -> GFLOP/s of the fastest of `repeats` float32 n^3 matrix products."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    f = tf.function(lambda: tf.matmul(a, b), jit_compile=True)
    f().numpy()  # compile
    return lambda repeats: 2 * n ** 3 / best_time(lambda: f().numpy(), repeats) / 1e9


def time_against_peak(epoch, gflop, peak, rounds, peak_repeats=5):
    """Times epoch() `rounds` times, measuring the peak (GFLOP/s) before and after each; returns the
    seconds of each round, the share of the peak each reached (its GFLOP/s over the mean of the
    peaks around it) and every peak measured."""
    peaks, seconds = [peak(peak_repeats)], []
    for _ in range(rounds):
        seconds.append(best_time(epoch, 1))
        peaks.append(peak(peak_repeats))
    shares = [gflop / s / ((before + after) / 2) for s, before, after in zip(seconds, peaks, peaks[1:])]
    return seconds, shares, peaks


def chain_macs(sizes):
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def m1_epoch(batch_size, hidden, z_dim=50, n=50_000):
    """One epoch of M1's training steps, run as train_M1 runs them (a callable), and its GFLOP."""
    model = m1.M1(hidden=hidden, z_dim=z_dim)
    optimizer = keras.optimizers.Adam(3e-4)
    optimizer.build(model.trainable_variables)
    x = tf.constant(np.random.default_rng(0).random((n, 784), dtype=np.float32))
    step = m1.make_train_step(model, optimizer, x, loop.make_rng(0, recipe_settings("m1")["rng"]), n)
    steps = loop.compile_steps(step, model.trainable_variables)
    batches = np.arange(n // batch_size * batch_size, dtype=np.int32).reshape(-1, batch_size)
    chunks = [tf.constant(batches[s: s + 50]) for s in range(0, len(batches), 50)]

    def epoch():
        for chunk in chunks:
            out = steps(chunk)
        out[1].numpy()
    macs = chain_macs([784, *hidden, 2 * z_dim]) + chain_macs([z_dim, *hidden, 784])
    return epoch, 1, 6 * macs * n / 1e9


class NoiseStandIn:
    """For timing by parts only: a generator whose 'normals' are zeros ('no noise') or shifted
    uniform bits ('uniform noise'), to split the noise's cost into its bits and its transform."""

    def __init__(self, part, rng):
        self.part, self.rng = part, rng

    def normal(self, shape):
        return tf.zeros(shape) if self.part == "no noise" else self.rng.uniform(shape) - 0.5

    def uniform(self, shape):
        return self.rng.uniform(shape)


# Timing by parts of an M2 epoch: each variant removes one kind of work from the whole step.
M2_PARTS = ("whole step", "no noise", "uniform noise", "relu for softplus", "forward only")


def m2_epoch(features, hidden, likelihood, n_lab=1, n_unl=499, steps=100, z_dim=50, k=10, part="whole step"):
    """One epoch of M2's training steps (1 + 499 images, 100 steps, 10 a call; a callable) and its GFLOP,
    on random stand-ins for M1's features (features > 0) or binarised pixels (784, bernoulli);
    `part` one of M2_PARTS (the GFLOP are the whole step's whatever the part)."""
    n = (n_lab + n_unl) * steps
    rng = np.random.default_rng(0)
    if likelihood == "gaussian":
        inputs = Features("features", rng.standard_normal((n, features)).astype(np.float32),
                          np.full((n, features), -2.0, np.float32))
    else:
        inputs = Features("pixels", rng.random((n, features), dtype=np.float32), np.zeros((n, 0), np.float32))
    model = m2.M2(features, hidden, z_dim, likelihood=likelihood)
    optimizer = keras.optimizers.Adam(3e-4)
    optimizer.build(model.trainable_variables)
    y = rng.integers(0, k, n).astype(np.int32)
    noise = loop.make_rng(0, recipe_settings("m2")["rng"])
    if part in ("no noise", "uniform noise"):
        noise = NoiseStandIn(part, noise)
    if part == "relu for softplus":
        for layer in (model.encoder.first, *model.encoder.rest, model.decoder.first, *model.decoder.rest,
                      *model.classifier.layers):
            if layer.activation is blocks.softplus:
                layer.activation = keras.activations.relu
    if part == "forward only":  # the loss and its terms, no gradient or update
        minibatch_loss = m2.make_minibatch_loss(model, inputs, y, noise, 0.1, n_lab * steps)

        def step(lab, unl):
            return minibatch_loss(lab, unl)[1]
    else:
        step = m2.make_train_step(model, optimizer, inputs, y, noise, 0.1, n_lab * steps)
    run = loop.compile_steps(step, model.trainable_variables)
    order = np.arange(n, dtype=np.int32).reshape(steps, -1)
    chunks = [(tf.constant(order[s: s + 10, :n_lab]), tf.constant(order[s: s + 10, n_lab:]))
              for s in range(0, steps, 10)]

    def epoch():
        for lab, unl in chunks:
            out = run(lab, unl)
        out[1].numpy()
    x_params = 2 * features if likelihood == "gaussian" else features
    classifier = chain_macs([features, *hidden, k])
    encoder_x = features * hidden[0]  # once per example: the class enters as one added row
    encoder_rest = chain_macs([*hidden, 2 * z_dim])
    decoder = chain_macs([z_dim, *hidden, x_params])
    per_labelled = classifier + encoder_x + encoder_rest + decoder
    per_unlabelled = classifier + encoder_x + k * (encoder_rest + decoder)
    macs = steps * (n_lab * per_labelled + n_unl * per_unlabelled)
    return epoch, 1, 6 * macs / 1e9


def adgm_epoch(kind, recipe, timed_steps=50):
    """One epoch's time of an ADGM or SDGM of a recipe , from `timed_steps` of its
    steps (100 labelled + 100 unlabelled pixels, 10 steps a call; a callable that runs them and
    returns the factor to an epoch), and the epoch's GFLOP."""
    config = recipe_settings(kind, recipe)
    hidden, a_dim, z_dim, k, samples = config["hidden"], config["a_dim"], config["z_dim"], 10, config["samples"]
    n_lab, steps = config["labelled_per_batch"], config["batches"]
    n_unl = (50000 - n_lab) // steps
    n = n_lab + n_unl * timed_steps
    rng = np.random.default_rng(0)
    inputs = Features("pixels", rng.random((n, 784), dtype=np.float32), np.zeros((n, 0), np.float32))
    model = adgm.build(kind, config, 784)
    optimizer = keras.optimizers.Adam(3e-4)
    optimizer.build(model.trainable_variables)
    step = adgm.make_train_step(model, optimizer, inputs, rng.integers(0, k, n).astype(np.int32),
                                loop.make_rng(0, config["rng"]), config["alpha"], n_lab, samples)
    run = loop.compile_steps(step, model.trainable_variables)
    lab = np.broadcast_to(np.arange(n_lab, dtype=np.int32), (timed_steps, n_lab))
    unl = np.arange(n_lab, n, dtype=np.int32).reshape(timed_steps, n_unl)
    chunks = [(tf.constant(lab[s: s + 10]), tf.constant(unl[s: s + 10])) for s in range(0, timed_steps, 10)]

    def some_steps():
        for chunk in chunks:
            out = run(*chunk)
        out[1].numpy()
    once = chain_macs([784, *hidden, 2 * a_dim]) + (a_dim + 784) * hidden[0] + chain_macs([*hidden, k]) \
        + (784 + a_dim) * hidden[0] + (784 if kind == "adgm" else a_dim) * hidden[0]
    per_class = chain_macs([*hidden, 2 * z_dim]) + 2 * z_dim * hidden[0] + chain_macs([*hidden, 784]) \
        + chain_macs([*hidden, 2 * a_dim])
    macs = steps * samples * (n_lab * (once + per_class) + n_unl * (once + k * per_class))
    return some_steps, steps / timed_steps, 6 * macs / 1e9


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m1-batch", type=positive_int, default=recipe_settings("m1")["batch_size"],
                   help="M1 minibatch size (default: the fast recipe's, 200)")
    p.add_argument("--m2-features", type=positive_int, default=20,
                   help="active M1 units fed to M2 (default 20, the default M1's; 24 for the first M1)")
    p.add_argument("--pixels", action="store_true", help="also time an epoch of M2 on pixels (784-500-50)")
    p.add_argument("--threads", type=count, default=0,
                   help="TensorFlow threads (default 0: all); 1, pinned with taskset, measures one core "
                        "while the other trains")
    p.add_argument("--parts", action="store_true",
                   help="also time the M1+M2 epoch by parts: without noise, with uniform noise, with "
                        "ReLU for softplus, forward only")
    p.add_argument("--adgm", action="store_true",
                   help="also time an ADGM and an SDGM epoch of the fast recipe (from 50 of its 499 steps)")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="timings of each epoch, each between two measures of the peak (default 5)")
    args = p.parse_args(argv)
    loop.set_threads(args.threads)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    print(f"{time.strftime('%Y-%m-%d')}, {loop.cpu_description()}, {threads} threads")
    rows = [("M1 epoch, 784-500-500-50, batch %d" % args.m1_batch, lambda: m1_epoch(args.m1_batch, [500, 500])),
            ("M2 epoch, %d-300-50, 1 + 499 x 100" % args.m2_features,
             lambda: m2_epoch(args.m2_features, [300], "gaussian"))]
    if args.parts:
        rows += [(f"  the same, {part}", lambda part=part: m2_epoch(args.m2_features, [300], "gaussian", part=part))
                 for part in M2_PARTS[1:]]
    if args.pixels:
        rows.append(("M2 on pixels epoch, 784-500-50, 1 + 499 x 100",
                     lambda: m2_epoch(784, [500], "bernoulli")))
    if args.adgm:
        for kind in ("adgm", "sdgm"):
            rows.append((f"{kind.upper()} epoch, fast recipe, 100 + 100 x 499", lambda kind=kind: adgm_epoch(kind, "fast")))
    peak = make_matmul_peak()
    for name, build in rows:
        epoch, factor, gflop = build()
        epoch()  # compile
        seconds, shares, peaks = time_against_peak(epoch, gflop / factor, peak, args.rounds)
        seconds = [factor * s for s in seconds]
        print(f"{name}: {np.median(seconds):6.2f} s, {gflop:6.1f} GFLOP, {gflop / np.median(seconds):6.1f} GFLOP/s, "
              f"{100 * np.median(shares):5.1f}% of the float32 2048^3 matmul's peak (median of {args.rounds}: "
              f"{100 * min(shares):.1f}-{100 * max(shares):.1f}%; peak {min(peaks):.1f}-{max(peaks):.1f} GFLOP/s)")


if __name__ == "__main__":
    run_cli(main)
