"""How close the ADGM authors' first code's unlabelled target is to the true labels, on trained weights.

    python tools/authors_leak.py                       # the shipped ADGM, 3 and 10 draws
    python tools/authors_leak.py --weights W.npz --samples 10 --batches 600

Their code (see models.adgm.authors_draw_mix and data.batches.class_sorted_minibatches) weighs each
unlabelled image's q(y|a, x) by the bound of S images of its minibatch, which is one digit. For images
of that pool in their order, this prints three error rates against the true labels: argmax_y of the
image's own bound averaged over its S draws, argmax_y of the row their reshape gives it, and
argmax_y of q(y|a, x) averaged over the same draws. No training.
"""

import numpy as np

from ssdgm.data import mnist
from ssdgm.data.batches import class_sorted_minibatches
from ssdgm.models import adgm, registry
from ssdgm.models.m2 import every_class
from ssdgm.tf import tf
from ssdgm.training.cli import ArgumentParser, positive_int, run_cli


def target_errors(model, x, y, samples, seed):
    """Error rates of the own bound's, the authors' mixed row's and q(y|a, x)'s argmax for one
    minibatch x [B, x_dim] (binarised), labels y [B], with `samples` draws of (a, z)."""
    rng = np.random.default_rng(seed)
    eps_a = rng.standard_normal((samples, len(x), model.a_dim), np.float32)
    eps_z = rng.standard_normal((model.n_classes, samples, len(x), model.z_dim), np.float32)
    a, _ = adgm.sample_a(model, x, eps_a)
    bound = adgm.bound_given_a(model, x, every_class(model.n_classes)[:, None], a, eps_z)[0]  # [K, S, B]
    own = tf.reduce_mean(bound, axis=1)
    mixed = tf.reduce_mean(adgm.authors_draw_mix(bound), axis=1)
    qy = tf.reduce_mean(tf.nn.softmax(model.classify_given(a, x)), axis=0)  # [B, K]
    return [np.mean(np.argmax(v, axis=ax) != y) for v, ax in ((own, 0), (mixed, 0), (qy, 1))]


def main(argv=None):
    p = ArgumentParser(description="The ADGM authors' unlabelled target against the true labels.")
    p.add_argument("--weights", default=registry.get("adgm").shipped(None, "", 100, 0),
                   help="ADGM weights (default: the shipped ones, weights/ADGM/adgm_labels100_seed0.npz)")
    p.add_argument("--samples", type=positive_int, nargs="+", default=[3, 10], help="draws S (default 3 10)")
    p.add_argument("--batches", type=positive_int, default=60,
                   help="minibatches of their 600, evenly spaced (default 60: 6,000 images)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    model, _ = adgm.load(args.weights, "")
    splits = mnist.load_splits()
    x = np.concatenate([splits["train"][0], splits["valid"][0]])
    y = np.concatenate([splits["train"][1], splits["valid"][1]])
    labelled = mnist.labelled_split(splits["train"][1], 100, args.seed)[0]
    rows = class_sorted_minibatches(labelled, y, 100)[1]
    rows = rows[np.linspace(0, len(rows) - 1, min(args.batches, len(rows))).astype(int)]
    pixels = mnist.binarize(x[rows.ravel()], np.random.default_rng(mnist.EVAL_SEED)).reshape(*rows.shape, -1)
    print(f"{args.weights}: {rows.size} images of the authors' pool in their order, "
          f"{sum(len(set(y[r])) == 1 for r in rows)} of {len(rows)} minibatches one digit")
    for s in args.samples:
        errors = np.mean([target_errors(model, pixels[i], y[row], s, args.seed + i) for i, row in enumerate(rows)], axis=0)
        print(f"S = {s:2d}: error of argmax_y of the image's own bound {100 * errors[0]:5.2f}%, of the row "
              f"their reshape gives it {100 * errors[1]:5.2f}%, of q(y|a, x) {100 * errors[2]:5.2f}%")


if __name__ == "__main__":
    run_cli(main)
