"""Train the stacked M1+M2 classifier (`-train`), or evaluate the shipped weights (no flag).

    python train_M2.py -train                 # M1+M2 with 100 labels on the shipped M1
    python train_M2.py                        # validation and test error of the shipped N=100 model
    python train_M2.py -train --model m2 --labels all   # M2 on pixels (for run_analogy.py)
"""
import os
import shutil
import sys
import time

from common import (ArgumentParser, RunState, UserError, check_finite, quiet_tensorflow, run_cli,
                    save_weights, write_json)

quiet_tensorflow()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from data import mnist  # noqa: E402
from models import m1  # noqa: E402
from models import m2  # noqa: E402
from models.m2 import M2, loss_fn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N_PRUNE = 1000  # unlabelled training images on which M1's active units are found, as the authors


def parse_labels(text, n_train):
    if text == "all":
        return n_train
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--labels must be a number or 'all', got {text!r}")


def parse_args(argv=None):
    p = ArgumentParser(description="M1+M2 (or M2 alone) of Kingma et al. 2014 on MNIST.")
    p.add_argument("-train", "--train", action="store_true",
                   help="train (resuming from --out if a checkpoint is there); without it, evaluate")
    p.add_argument("--model", choices=["m1m2", "m2"], default="m1m2",
                   help="m1m2: M2 on M1's latent features (default); m2: M2 on pixels")
    p.add_argument("--labels", default="100",
                   help="labelled training images N, a multiple of 10, or 'all' (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds the labelled subset, minibatches, init, sampling")
    p.add_argument("--epochs", type=int, default=3000, help="epochs in all (authors: 3000)")
    p.add_argument("--alpha", type=float, default=0.1,
                   help="classification weight: beta = alpha * N_total / N_labelled (default 0.1)")
    p.add_argument("--hidden", type=int, nargs="+",
                   help="hidden layers of each MLP (default: m1m2 300 for N=100 and 500 otherwise, "
                        "as the authors' code; m2 500 500)")
    p.add_argument("--z-dim", type=int, default=50, help="dimensions of z (default 50)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (authors: 3e-4)")
    p.add_argument("--batches", type=int,
                   help="minibatches per epoch (default: 100 for N=100, else 200, as the authors)")
    p.add_argument("--m1-weights", default=m1.DEFAULT_WEIGHTS, help="M1 weights file (m1m2 only)")
    p.add_argument("--weights",
                   help="best-on-validation weights file (default weights/M2/<model>_labels<N>_seed<seed>.npz; "
                        "that name in --out when --out is given, so that a trial run never replaces "
                        "shipped weights)")
    p.add_argument("--out", help="run folder (default temp/M2/<model>_labels<N>_seed<seed>)")
    p.add_argument("--eval-every", type=int, default=10, help="epochs between evaluations (default 10)")
    p.add_argument("--ckpt-minutes", type=float, default=3.0,
                   help="minutes between checkpoints, besides one at every evaluation")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for TensorFlow (default 0: all); two runs of 1 thread each on 2 "
                        "cores train about 30%% more epochs in all than one run of 2")
    p.add_argument("--data", default=mnist.DEFAULT_PATH, help="MNIST .npz file")
    p.add_argument("--subset", type=int, default=0,
                   help="use only the first N images of each split (quick checks; 0 = all)")
    args = p.parse_args(argv)
    if args.threads < 0:
        p.error("--threads must be 0 (all) or more")
    for name in ("epochs", "z_dim", "eval_every", "batches"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if (args.hidden and min(args.hidden) < 1) or args.lr <= 0 or args.alpha < 0 or args.subset < 0:
        p.error("--hidden and --lr must be positive, --alpha and --subset non-negative")
    n_train = args.subset or mnist.N_TRAIN
    args.n_labels = parse_labels(args.labels, n_train)
    mnist.check_label_count(args.n_labels, n_train)
    label_tag = "all" if args.n_labels == n_train else str(args.n_labels)
    if args.hidden is None:
        args.hidden = [500, 500] if args.model == "m2" else [300 if args.n_labels == 100 else 500]
    if args.batches is None:
        args.batches = 100 if args.n_labels == 100 else 200
    args.batches = min(args.batches, args.n_labels)
    name = f"{args.model}_labels{label_tag}_seed{args.seed}"
    args.weights = args.weights or os.path.join(args.out or os.path.join(HERE, "weights", "M2"), name + ".npz")
    args.out = args.out or os.path.join(HERE, "temp", "M2", name)
    return args


class Features:
    """What M2 sees of an image: M1's kept latent units (m1m2) or its pixels (m2).

    Training examples (prepared only when splits has 'train') are sampled afresh at each minibatch:
    z1 ~ q(z1|x) for m1m2, a binarisation for m2. Validation and test images are fixed: the posterior
    mean, or the grey values (a fixed binarisation for the validation bound).
    Args:
      prune: training images on which M1's active units are found (when kept is not given).
      kept, m1_sha256: the M1 units to keep and the M1's identity, as saved with M2 weights.
    """

    def __init__(self, model, splits, m1_path, prune=None, kept=None, m1_sha256=None):
        self.model = model
        self.m1_sha256, self.kept = "", None
        if model == "m2":
            if "train" in splits:
                self.train_loc = splits["train"][0]
                self.train_logvar = np.zeros((len(self.train_loc), 0), np.float32)
            self.eval = {k: splits[k][0] for k in ("valid", "test")}
            self.valid_bound_x = mnist.binarize(self.eval["valid"], np.random.default_rng(mnist.EVAL_SEED))
            return
        encoder = m1.load(m1_path, m1_sha256)
        self.m1_sha256 = encoder.weights_sha256
        if kept is None:
            kept = np.flatnonzero(m1.active_units(encoder.encode(prune)[0]).numpy())
            if len(kept) == 0:
                raise UserError(f"{m1_path}: M1 has no active latent units to classify from")
        self.kept = np.asarray(kept)
        if "train" in splits:
            self.train_loc, self.train_logvar = self._encode(encoder, splits["train"][0])
        self.eval = {k: self._encode(encoder, splits[k][0])[0] for k in ("valid", "test")}
        self.valid_bound_x = self.eval["valid"]

    def _encode(self, encoder, x):
        parts = [encoder.encode(x[i: i + 5000]) for i in range(0, len(x), 5000)]
        mean = np.concatenate([p[0].numpy() for p in parts])[:, self.kept]
        logvar = np.concatenate([p[1].numpy() for p in parts])[:, self.kept]
        return mean, logvar

    @property
    def dim(self):
        return self.eval["valid"].shape[1]

    def sample(self, loc, logvar, rng):
        """A fresh training example from its stored parameters (inside the train step)."""
        if self.model == "m2":
            return tf.cast(rng.uniform(tf.shape(loc)) < loc, tf.float32)
        return loc + tf.exp(0.5 * logvar) * rng.normal(tf.shape(loc))


def minibatches(labelled, unlabelled, n_batches, seed):
    """The authors' fixed partition: both sets shuffled once and cut into n_batches parts each."""
    rng = np.random.default_rng([seed, 1])
    lab = np.array_split(rng.permutation(labelled), n_batches)
    unl = np.array_split(rng.permutation(unlabelled), n_batches)
    return [(a.astype(np.int32), b.astype(np.int32)) for a, b in zip(lab, unl)]


def error_rate(model, x, y):
    logits = np.concatenate([model.classify(x[i: i + 5000]).numpy() for i in range(0, len(x), 5000)])
    return float(np.mean(np.argmax(logits, axis=1) != y))


def validation_bound(model, x, y):
    """Mean L(x, y) in nats per validation image, on fixed noise: how well M2 models what it sees."""
    eps = np.random.default_rng(mnist.EVAL_SEED).standard_normal((len(x), model.z_dim), np.float32)
    bound = [m2.labelled_bound(model, x[i: i + 5000], tf.one_hot(y[i: i + 5000], model.n_classes),
                               eps[i: i + 5000])[0].numpy() for i in range(0, len(x), 5000)]
    return float(np.mean(np.concatenate(bound)))


def evaluate(args):
    hint = f"run `python train_M2.py -train --model {args.model} --labels {args.labels}` to train it"
    model, extra = m2.load(args.weights, hint)
    splits = mnist.load_splits(args.data, args.subset)
    del splits["train"]  # only M2's inputs for the evaluation sets are needed
    features = Features(args.model, splits, args.m1_weights, kept=extra.get("kept_units"),
                        m1_sha256=str(extra.get("m1_sha256", "")))
    v_bound = validation_bound(model, features.valid_bound_x, splits["valid"][1])
    v_err = error_rate(model, features.eval["valid"], splits["valid"][1])
    t_err = error_rate(model, features.eval["test"], splits["test"][1])
    print(f"{args.model} labels={args.labels} seed={args.seed} ({args.weights}): validation bound "
          f"L(x,y) {v_bound:.2f}, validation error {100 * v_err:.2f}%, test error {100 * t_err:.2f}%")


def make_rng(seed):
    # ThreeFry, not the default Philox: under XLA on this CPU it makes an M2 epoch about 15% faster.
    return tf.random.Generator.from_seed(seed, alg="threefry")


TERMS = ["loss", "labelled_bound", "log_qy", "unlabelled_bound", "reconstruction", "kl"]


def make_train_step(model, optimizer, features, y_train, rng, beta):
    """A compiled Adam step on one minibatch (labelled indices, unlabelled indices); returns TERMS."""
    loc, logvar = tf.constant(features.train_loc), tf.constant(features.train_logvar)
    labels = tf.constant(y_train)
    n_total = len(y_train)

    @tf.function(jit_compile=True)
    def train_step(lab, unl):
        def draw(idx):
            return features.sample(tf.gather(loc, idx), tf.gather(logvar, idx), rng)
        x_lab, x_unl = draw(lab), draw(unl)
        eps_lab = rng.normal([tf.shape(lab)[0], model.z_dim])
        eps_unl = rng.normal([model.n_classes, tf.shape(unl)[0], model.z_dim])
        with tf.GradientTape() as tape:
            loss, terms = loss_fn(model, x_lab, tf.gather(labels, lab), eps_lab, x_unl, eps_unl,
                                  beta, n_total)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return tf.stack([loss] + [terms[k] for k in TERMS[1:]])
    return train_step


def train(args):
    splits = mnist.load_splits(args.data, args.subset)
    x_train, y_train = splits["train"]
    labelled, unlabelled = mnist.labelled_split(y_train, args.n_labels, args.seed)
    prune = x_train[(unlabelled if len(unlabelled) else labelled)[:N_PRUNE]]
    features = Features(args.model, splits, args.m1_weights, prune=prune)
    batches = minibatches(labelled, unlabelled, args.batches, args.seed)
    n_total = len(x_train)
    beta = args.alpha * n_total / args.n_labels
    keras.utils.set_random_seed(args.seed)
    model = M2(features.dim, args.hidden, args.z_dim,
               likelihood="gaussian" if args.model == "m1m2" else "bernoulli")
    optimizer = keras.optimizers.Adam(args.lr)
    optimizer.build(model.trainable_variables)
    rng = make_rng(args.seed)
    config = {"model": args.model, "labels": args.n_labels, "seed": args.seed, "alpha": args.alpha,
              "hidden": args.hidden, "z_dim": args.z_dim, "lr": args.lr, "batches": args.batches,
              "subset": args.subset, "m1_sha256": features.m1_sha256}
    run = RunState(args.out, config, args.ckpt_minutes, np.inf, model=model, optimizer=optimizer, rng=rng)
    epoch, best_valid, seconds, keeper, log = run.epoch, run.best_valid, run.seconds, run.keeper, run.log
    if args.model == "m1m2":
        log(f"M1 {args.m1_weights}: kept {len(features.kept)} active units {features.kept.tolist()}")
    # With unlabelled images the model is a classifier and is chosen on validation error; with every
    # label known, it is a generator (for the analogies) and is chosen on the validation bound.
    select_on = "validation error" if len(unlabelled) else "validation bound"
    log(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, {len(batches)} minibatches of "
        f"{len(batches[0][0])} + {len(batches[0][1])}; beta = {beta:g}; weights chosen on {select_on}")
    writer = tf.summary.create_file_writer(os.path.join(args.out, "tb"))

    train_step = make_train_step(model, optimizer, features, y_train, rng, beta)
    batches_tf = [(tf.constant(a), tf.constant(b)) for a, b in batches]
    while int(epoch) < args.epochs:
        e = int(epoch) + 1
        start = time.time()
        bar = keras.utils.Progbar(len(batches), stateful_metrics=["loss"],
                                  verbose=1 if sys.stdout.isatty() else 0)
        totals = np.zeros(len(TERMS))
        for s, (lab, unl) in enumerate(batches_tf):
            values = train_step(lab, unl).numpy()
            check_finite(values, e, keeper)
            totals += values
            bar.update(s + 1, [("loss", values[0])])
        means = dict(zip(TERMS, totals / len(batches)))
        seconds.assign_add(time.time() - start)
        epoch.assign(e)
        with writer.as_default(step=e):
            for k, v in means.items():
                tf.summary.scalar(f"train/{k}", v)
        if e % args.eval_every == 0 or e == args.epochs:
            v_err = error_rate(model, features.eval["valid"], splits["valid"][1])
            t_err = error_rate(model, features.eval["test"], splits["test"][1])
            v_bound = validation_bound(model, features.valid_bound_x, splits["valid"][1])
            with writer.as_default(step=e):
                tf.summary.scalar("valid/error", v_err)
                tf.summary.scalar("test/error", t_err)
                tf.summary.scalar("valid/labelled_bound", v_bound)
            score = v_err if select_on == "validation error" else -v_bound
            is_best = score < float(best_valid)
            log(f"epoch {e:4d} | L(x,y) {means['labelled_bound']:7.2f} | U(x) {means['unlabelled_bound']:7.2f} "
                f"(rec {means['reconstruction']:7.2f}, KL {means['kl']:5.2f}) | log q(y|x) {means['log_qy']:7.4f} | "
                f"valid L(x,y) {v_bound:7.2f} | valid err {100 * v_err:5.2f}% | test err {100 * t_err:5.2f}% | "
                f"{time.time() - start:4.1f} s/epoch, {float(seconds) / 60:6.1f} min{' | best' if is_best else ''}")
            if is_best:
                best_valid.assign(score)
                extra = {"m1_sha256": features.m1_sha256}
                if features.kept is not None:
                    extra["kept_units"] = features.kept
                save_weights(args.weights, model, model.get_config(), extra)
                write_json(os.path.splitext(args.weights)[0] + ".json", {
                    "command": "python train_M2.py " + " ".join(sys.argv[1:]),
                    "model": args.model, "labels": args.n_labels, "seed": args.seed, "epochs": e,
                    "train_minutes": round(float(seconds) / 60, 1), "alpha": args.alpha, "beta": beta,
                    "hidden": args.hidden, "z_dim": args.z_dim, "lr": args.lr, "batches": args.batches,
                    "selected_on": select_on, "valid_labelled_bound": v_bound,
                    "valid_error": v_err, "test_error": t_err, "m1_weights_sha256": features.m1_sha256,
                    "kept_units": None if features.kept is None else features.kept.tolist()})
            keeper.save(force=True)
            shutil.copyfile(log.path, os.path.splitext(args.weights)[0] + ".log")
        else:
            keeper.save()
    writer.flush()
    best = (f"error {100 * float(best_valid):.2f}%" if select_on == "validation error"
            else f"bound {-float(best_valid):.2f}")
    log(f"done: {int(epoch)} epochs, best validation {best}, weights {args.weights}")
    shutil.copyfile(log.path, os.path.splitext(args.weights)[0] + ".log")


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.train:
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    run_cli(main)
