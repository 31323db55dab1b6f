"""Analogies (style held per row, class per column) and class-conditional samples from a trained M2.

    python run_analogy.py                   # pixel M2: temp/analogy.png and temp/conditional.png
    python run_analogy.py --model m1m2      # the stacked model, decoded through M1

Analogies as in the paper's Figure 1: each row's leftmost image is a test image x with label y; its
style z is the mean of q(z|x, y), decoded with every class 0-9. Conditional samples: one row per class,
z ~ p(z) shared down each column.
"""
import os

from common import ArgumentParser, UserError, check_writable, digit_grid, quiet_tensorflow, run_cli, save_png

quiet_tensorflow()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data import mnist  # noqa: E402
from models import m1  # noqa: E402
from models.m2 import PixelDecoder, every_class, load as load_m2  # noqa: E402
from training import positive_int, seed_value  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = ArgumentParser(description="Analogy grid and class-conditional samples of a trained M2.")
    p.add_argument("--model", dest="model_name", choices=["m2", "m1m2"], default="m2",
                   help="m2: M2 on pixels (default, as the paper's figure); m1m2: M2 on M1's features")
    p.add_argument("--weights", help="M2 weights (default weights/M2/m2_labelsall_seed0_authors.npz, "
                                     "or m1m2_labels100_seed0_authors.npz for --model m1m2)")
    p.add_argument("--m1-weights", default=m1.DEFAULT_WEIGHTS, help="M1 weights (m1m2 only)")
    p.add_argument("--seed", type=seed_value, default=0, help="chooses the test images and the random z")
    p.add_argument("--rows", type=positive_int, default=10, help="analogy rows, one test image each (default 10)")
    p.add_argument("--samples", type=positive_int, default=10, help="random z per class row (default 10)")
    p.add_argument("--out", default=os.path.join(HERE, "temp", "analogy.png"),
                   help="analogy figure; the conditional samples go beside it as conditional.png")
    p.add_argument("--data", default=mnist.DEFAULT_PATH, help="MNIST .npz file")
    args = p.parse_args(argv)
    args.weights = args.weights or os.path.join(
        HERE, "weights", "M2", "m2_labelsall_seed0_authors.npz" if args.model_name == "m2" else "m1m2_labels100_seed0_authors.npz")
    return args


def load(args):
    hint = ("run `python train_M2.py -train --model m2 --labels all` to train it" if args.model_name == "m2"
            else "run `python train_M2.py -train` to train it")
    m2, extra = load_m2(args.weights, hint)
    if (m2.likelihood == "bernoulli") != (args.model_name == "m2"):
        raise UserError(f"{args.weights}: an M2 for the other --model")
    if args.model_name == "m2":
        return PixelDecoder(m2)
    m1_model = m1.load(args.m1_weights, str(extra.get("m1_sha256", "")))
    return PixelDecoder(m2, m1_model, np.asarray(extra["kept_units"]))


def choose_rows(y, n_rows, seed):
    """Test-image indices: classes 0-9 in turn, a random image of each, so rows span digits and styles."""
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(y == r % 10)) for r in range(n_rows)])


def analogy_grid(decoder, x, y):
    """[rows, 11, 784]: each test image, then its style decoded with classes 0-9."""
    n_classes = decoder.m2.n_classes
    z, _ = decoder.m2.encode(decoder.features(x), tf.one_hot(y, n_classes))  # [rows, z_dim]
    images = decoder.pixels(tf.broadcast_to(z, [n_classes, *z.shape]), every_class(n_classes))  # [10, rows, 784]
    return np.concatenate([x[:, None, :], np.transpose(images.numpy(), (1, 0, 2))], axis=1)


def conditional_grid(decoder, n_samples, seed):
    """[10, n_samples, 784]: row k decodes class k; column j uses the same z ~ p(z) in every row."""
    n_classes, z_dim = decoder.m2.n_classes, decoder.m2.z_dim
    z = np.random.default_rng(seed).standard_normal((n_samples, z_dim)).astype(np.float32)
    return decoder.pixels(tf.broadcast_to(z, [n_classes, n_samples, z_dim]), every_class(n_classes)).numpy()


def main(argv=None):
    args = parse_args(argv)
    check_writable(os.path.dirname(os.path.abspath(args.out)))
    decoder = load(args)
    x_test, y_test = mnist.load_splits(args.data)["test"]
    rows = choose_rows(y_test, args.rows, args.seed)
    grid = analogy_grid(decoder, x_test[rows], y_test[rows])
    name = "M2 on pixels" if decoder.m1 is None else "M1+M2"
    save_png(args.out, digit_grid(grid.reshape(-1, 784), args.rows, 11),
             f"{name}: test image, then its style with classes 0-9")
    conditional = os.path.join(os.path.dirname(os.path.abspath(args.out)), "conditional.png")
    save_png(conditional, digit_grid(conditional_grid(decoder, args.samples, args.seed).reshape(-1, 784),
                                     10, args.samples),
             f"{name}: class 0-9 per row, one random style per column")
    print(f"analogies: {args.out}\nconditional samples: {conditional}")


if __name__ == "__main__":
    run_cli(main)
