"""Train M1 (`-train`), or evaluate the shipped M1 weights (no flag).

    python train_M1.py -train        # trains, resuming from temp/M1/ckpt if a run is there
    python train_M1.py               # test-set bound and active units of weights/M1/m1.npz
"""
import glob
import os
import shutil
import sys
import time

from common import (ArgumentParser, RunState, UserError, check_finite, digit_grid, frames_to_gif,
                    quiet_tensorflow, run_cli, save_png, save_weights, write_json)

quiet_tensorflow()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from data import mnist  # noqa: E402
from models import m1  # noqa: E402
from models.m1 import M1, active_units, elbo_terms, loss_fn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = m1.DEFAULT_WEIGHTS


def parse_args(argv=None):
    p = ArgumentParser(description="M1 (VAE) of Kingma et al. 2014 on MNIST.")
    p.add_argument("-train", "--train", action="store_true",
                   help="train (resuming from --out if a checkpoint is there); without it, evaluate --weights")
    p.add_argument("--epochs", type=int, default=1000, help="epochs to train in all (default 1000)")
    p.add_argument("--batch-size", type=int, default=100,
                   help="minibatch size (default 100, which reaches the bound soonest here; "
                        "the authors' code used 1000)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (authors: 3e-4)")
    p.add_argument("--lr-decay-epochs", type=int, default=0,
                   help="anneal the learning rate linearly towards 0 over the last K epochs (default 0: "
                        "constant, as the authors); a schedule, so it may change when resuming")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling and sampling")
    p.add_argument("--hidden", type=int, nargs="+", default=[500, 500],
                   help="hidden layer sizes of encoder and decoder (code: 500 500; paper text: 600 600)")
    p.add_argument("--z-dim", type=int, default=50, help="latent dimensions (default 50)")
    p.add_argument("--init", choices=["code", "paper"], default="code",
                   help="code: W~N(0,1/fan_in), b~N(0,1e-6); paper: W~N(0,1e-6), b=0")
    p.add_argument("--eval-every", type=int, default=10,
                   help="epochs between evaluations (default 10, as the authors)")
    p.add_argument("--ckpt-minutes", type=float, default=3.0,
                   help="minutes between checkpoints, besides one at every evaluation")
    p.add_argument("--out", help="run folder (default temp/M1): checkpoints, TensorBoard logs, log file, "
                                 "frames; figures go beside it")
    p.add_argument("--weights",
                   help="best-on-validation weights file, written when training, read otherwise (default "
                        "weights/M1/m1.npz; m1.npz in --out when --out is given, so that a trial run "
                        "never replaces the shipped weights)")
    p.add_argument("--data", default=mnist.DEFAULT_PATH, help="MNIST .npz file")
    p.add_argument("--subset", type=int, default=0,
                   help="use only the first N images of each split (quick checks; 0 = all)")
    p.add_argument("--gif", action="store_true",
                   help="only turn the run's frames into M1_model.gif beside --out")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "z_dim", "eval_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.hidden) < 1 or args.lr <= 0 or args.subset < 0 or not 0 <= args.lr_decay_epochs <= args.epochs:
        p.error("--hidden and --lr must be positive, --subset non-negative, --lr-decay-epochs in [0, --epochs]")
    args.weights = args.weights or (os.path.join(args.out, "m1.npz") if args.out else WEIGHTS)
    args.out = args.out or os.path.join(HERE, "temp", "M1")
    return args


def load_data(args):
    splits = mnist.load_splits(args.data, args.subset)
    if args.batch_size > len(splits["train"][0]):
        raise UserError(f"--batch-size {args.batch_size} exceeds the {len(splits['train'][0])} training images")
    return splits


class Evaluator:
    """The one-sample bound on fixed binarisations, and active units of the posterior means."""

    def __init__(self, model, splits):
        self.model = model
        self.sets = {}
        for name in ("valid", "test"):
            # Binarised once, one noise draw per image: the same for every run and seed.
            rng = np.random.default_rng(mnist.EVAL_SEED)
            x_bin = mnist.binarize(splits[name][0], rng)
            eps = rng.standard_normal((len(x_bin), model.z_dim), np.float32)
            self.sets[name] = (tf.constant(x_bin), tf.constant(eps), tf.constant(splits[name][0]))

    @tf.function(jit_compile=True)
    def _bound(self, x_bin, eps):
        log_px_z, kl_z = elbo_terms(self.model, x_bin, eps)
        return tf.reduce_mean(log_px_z - kl_z), tf.reduce_mean(log_px_z), tf.reduce_mean(kl_z)

    def bound(self, name):
        """Mean bound, reconstruction and KL (nats) over the split."""
        x_bin, eps, _ = self.sets[name]
        return [float(t) for t in self._bound(x_bin, eps)]

    def active(self, name="valid"):
        mean, _ = self.model.encode(self.sets[name][2])
        return int(tf.reduce_sum(tf.cast(active_units(mean), tf.int32)))

    def reconstructions(self, n_rows=8, n_pairs=8):
        """Test images (odd columns) beside the decoded posterior means (even columns)."""
        x = self.sets["test"][2][: n_rows * n_pairs]
        x_rec = tf.sigmoid(self.model(x)).numpy()
        pairs = np.stack([x.numpy(), x_rec], axis=1).reshape(n_rows, 2 * n_pairs, 784)
        return digit_grid(pairs.reshape(-1, 784), n_rows, 2 * n_pairs)


def evaluate(args):
    model = m1.load(args.weights)
    splits = load_data(args)
    ev = Evaluator(model, splits)
    bound, rec, kl = ev.bound("test")
    print(f"M1 {args.weights}: test bound {bound:.2f} nats (reconstruction {rec:.2f}, KL {kl:.2f}), "
          f"{ev.active()} of {model.z_dim} latent units active")
    path = os.path.join(os.path.dirname(args.out), "M1_reconstructions.png")
    save_png(path, ev.reconstructions(), "M1: test images (left of each pair) and reconstructions")
    print(f"reconstructions: {path}")


def make_gif(run_dir):
    frames = sorted(glob.glob(os.path.join(run_dir, "frames", "*.png")))
    if not frames:
        raise UserError(f"{run_dir}/frames: no frames yet; train first")
    path = os.path.join(os.path.dirname(os.path.abspath(run_dir)), "M1_model.gif")
    frames_to_gif(frames, path)
    print(f"{len(frames)} frames -> {path}")


def make_train_steps(model, optimizer, x_train, rng):
    """A compiled function: Adam steps over batches [k, batch] of indices into x_train (grey values).

    Looping inside one XLA program saves a Python round trip per step. Returns the summed loss,
    reconstruction and KL of the k steps.
    """
    n_train = x_train.shape[0]

    @tf.function(jit_compile=True)
    def train_steps(batches):
        totals = tf.zeros([3])
        for i in tf.range(tf.shape(batches)[0]):
            grey = tf.gather(x_train, batches[i])
            x = tf.cast(rng.uniform(tf.shape(grey)) < grey, tf.float32)  # fresh binarisation
            eps = rng.normal([tf.shape(grey)[0], model.z_dim])
            with tf.GradientTape() as tape:
                loss, log_px_z, kl_z = loss_fn(model, x, eps, n_train)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            totals += tf.stack([loss, tf.reduce_mean(log_px_z), tf.reduce_mean(kl_z)])
        return totals
    return train_steps


def learning_rate(args, e):
    """The rate for epoch e (from 1): constant, then linear to lr / K in the last K epochs."""
    left = args.epochs - e + 1
    if left > args.lr_decay_epochs:
        return args.lr
    return args.lr * left / args.lr_decay_epochs


def train(args):
    splits = load_data(args)
    x_train = splits["train"][0]
    n_train, steps = len(x_train), len(x_train) // args.batch_size
    keras.utils.set_random_seed(args.seed)
    model = M1(hidden=args.hidden, z_dim=args.z_dim, init=args.init)
    optimizer = keras.optimizers.Adam(args.lr)
    optimizer.build(model.trainable_variables)
    rng = tf.random.Generator.from_seed(args.seed)
    config = {"hidden": args.hidden, "z_dim": args.z_dim, "init": args.init, "seed": args.seed,
              "batch_size": args.batch_size, "lr": args.lr, "subset": args.subset}
    run = RunState(args.out, config, args.ckpt_minutes, -np.inf, model=model, optimizer=optimizer, rng=rng)
    epoch, best_valid, seconds, keeper, log = run.epoch, run.best_valid, run.seconds, run.keeper, run.log
    x_train_tf = tf.constant(x_train)
    evaluator = Evaluator(model, splits)
    writer = tf.summary.create_file_writer(os.path.join(args.out, "tb"))

    train_steps = make_train_steps(model, optimizer, x_train_tf, rng)
    chunk = max(1, min(steps, 50))
    while int(epoch) < args.epochs:
        e = int(epoch) + 1
        start = time.time()
        optimizer.learning_rate.assign(learning_rate(args, e))
        order = np.random.default_rng([args.seed, e]).permutation(n_train)[: steps * args.batch_size]
        batches = order.reshape(steps, args.batch_size).astype(np.int32)
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss"], verbose=1 if sys.stdout.isatty() else 0)
        totals = np.zeros(3)
        for s in range(0, steps, chunk):
            part = train_steps(tf.constant(batches[s: s + chunk])).numpy()
            check_finite(part, e, keeper)
            totals += part
            bar.update(min(s + chunk, steps), [("loss", part[0] / len(batches[s: s + chunk]))])
        loss, rec, kl = totals / steps
        seconds.assign_add(time.time() - start)
        epoch.assign(e)
        with writer.as_default(step=e):
            tf.summary.scalar("train/loss", loss)
            tf.summary.scalar("train/reconstruction", rec)
            tf.summary.scalar("train/kl", kl)
            tf.summary.scalar("train/learning_rate", learning_rate(args, e))
        if e % args.eval_every == 0 or e == args.epochs:
            v_bound, v_rec, v_kl = evaluator.bound("valid")
            t_bound, _, _ = evaluator.bound("test")
            n_active = evaluator.active()
            with writer.as_default(step=e):
                tf.summary.scalar("valid/bound", v_bound)
                tf.summary.scalar("valid/reconstruction", v_rec)
                tf.summary.scalar("valid/kl", v_kl)
                tf.summary.scalar("test/bound", t_bound)
                tf.summary.scalar("active_units", n_active)
            is_best = v_bound > float(best_valid)
            log(f"epoch {e:4d} | train bound {rec - kl:8.2f} (rec {rec:8.2f}, KL {kl:6.2f}) | "
                f"valid {v_bound:8.2f} | test {t_bound:8.2f} | active {n_active:2d} | lr {learning_rate(args, e):.1e} | "
                f"{time.time() - start:5.1f} s/epoch, {float(seconds) / 60:6.1f} min{' | best' if is_best else ''}")
            frame = os.path.join(args.out, "frames", f"epoch_{e:05d}.png")
            os.makedirs(os.path.dirname(frame), exist_ok=True)
            save_png(frame, evaluator.reconstructions(), f"M1 epoch {e}: test images and reconstructions")
            if is_best:
                best_valid.assign(v_bound)
                save_weights(args.weights, model, model.get_config())
                write_json(os.path.splitext(args.weights)[0] + ".json", {
                    "command": "python train_M1.py " + " ".join(sys.argv[1:]),
                    "epochs": e, "train_minutes": round(float(seconds) / 60, 1), "seed": args.seed,
                    "valid_bound": round(v_bound, 3), "test_bound": round(t_bound, 3),
                    "active_units": n_active, "batch_size": args.batch_size, "lr": args.lr,
                    "lr_decay_epochs": args.lr_decay_epochs,
                    "hidden": args.hidden, "z_dim": args.z_dim, "init": args.init,
                    "eval": "one-sample bound, images binarised once with seed "
                            f"{mnist.EVAL_SEED}, nats per image"})
            keeper.save(force=True)
            shutil.copyfile(log.path, os.path.splitext(args.weights)[0] + ".log")
        else:
            keeper.save()
    writer.flush()
    log(f"done: {int(epoch)} epochs, best validation bound {float(best_valid):.2f}, weights {args.weights}")
    shutil.copyfile(log.path, os.path.splitext(args.weights)[0] + ".log")
    make_gif(args.out)


def main(argv=None):
    args = parse_args(argv)
    if args.gif:
        make_gif(args.out)
    elif args.train:
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    run_cli(main)
