"""Train M1 (`-train`), or evaluate the shipped M1 weights (no flag).

    python train_M1.py -train        # trains, resuming from temp/M1 if a run is there
    python train_M1.py               # test-set bound and active units of weights/M1/m1.npz
    python train_M1.py --gif         # the shipped run's reconstructions over training, as a GIF
"""
import os

from cli import (TRAINING_ONLY, ArgumentParser, UserError, check_training_flags, departures, positive_float,
                 positive_int, quiet_tensorflow, run_cli, training_flags, weights_path)
import recipes
from data import images, mnist

HERE = os.path.dirname(os.path.abspath(__file__))
GIF_FRAMES = 20
SHIPPED_FRAMES = os.path.join(HERE, "docs", "M1_training_frames.npz")


def parse_args(argv=None):
    p = ArgumentParser(description="M1 (VAE) of Kingma et al. 2014 on MNIST.",
                       parents=[training_flags(mnist.DEFAULT_PATH, list(recipes.RECIPES["m1"]))])
    p.add_argument("--batch-size", type=positive_int, help="minibatch size (default: the recipe's)")
    p.add_argument("--init", choices=["code", "paper"],
                   help="code: W~N(0,1/fan_in), b~N(0,1e-6) (default: the recipe's); paper: W~N(0,1e-6), b=0")
    p.add_argument("--prior-sd", type=positive_float,
                   help="standard deviation of the Gaussian prior on every weight (default: the recipe's, "
                        "0.3 fast, 1 authors); a smaller one is a stronger L2 decay")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"],
                   help="p(x|z): bernoulli, on the grey values binarised afresh (default: the recipe's); gaussian, "
                        "on the values themselves, for continuous data")
    p.add_argument("--pca", type=positive_float, metavar="K",
                   help="M1 reads the whitened PCA components of the grey values, fitted on the first 10,000 "
                        "training images, as the paper for SVHN (K = 600 components) and NORB (K = 0.999 of the "
                        "variance); with --likelihood gaussian (default: the recipe's, none)")
    p.add_argument("--gif", nargs="?", const=SHIPPED_FRAMES, metavar="FRAMES",
                   help="only turn a frames file (default: the shipped M1 run's, docs/M1_training_frames.npz; "
                        "a run's is <out>/frames.npz) into M1_training.gif beside it")
    args = p.parse_args(argv)
    if args.gif and args.train:
        raise UserError("--gif only draws a GIF from a frames file; leave out -train (a training run draws its own)")
    check_training_flags(args, TRAINING_ONLY + ("batch_size", "init", "prior_sd", "likelihood", "pca"))
    departed = departures(args, {"data": args.data, "subset": 0, "gif": None})
    start = images.prefix(args.data)
    args.config = {**recipes.resolve("m1", args), "seed": args.seed, "subset": args.subset,
                   **({"data": os.path.basename(args.data)} if start else {})}
    if args.config["pca"] and args.config["likelihood"] != "gaussian":
        raise UserError("--pca gives continuous components: add --likelihood gaussian")
    suffix = recipes.suffix("m1", args.config["recipe"])
    args.out = args.out or os.path.join(HERE, "temp", start + "M1" + suffix)
    args.weights = weights_path(args, os.path.join(HERE, "weights", "M1", f"{start}m1{suffix}.npz"), args.out,
                                os.path.join(HERE, "weights"), departed)
    return args


if __name__ == "__main__":
    run_cli(parse_args)  # --help and every flag's error at once, before TensorFlow loads (seconds)
quiet_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import training  # noqa: E402
from figures import add_frame, digit_grid, read_frames, save_png, write_gif  # noqa: E402
from files import check_writable, save_weights  # noqa: E402
from models import m1  # noqa: E402
from run_folder import RunFolder  # noqa: E402


def load_data(args):
    data = images.load(args.data, args.subset)
    n_train = len(data.splits["train"][0])
    if args.config["batch_size"] > n_train:
        raise UserError(f"--batch-size {args.config['batch_size']} exceeds the {n_train} training images")
    return data


def grid(evaluator, data):
    """The picture of test images beside their reconstructions, in the data's image shape."""
    return digit_grid(evaluator.reconstructions(), 8, 16,
                      shape=images.picture_shape(data.shape, evaluator.model.image_dim))


def evaluate(args):
    model = m1.load(args.weights)
    check_writable(os.path.dirname(args.out), "--out (the reconstructions go beside it)")
    data = load_data(args)
    if model.image_dim != len(data.splits["test"][0][0]):
        raise UserError(f"{args.weights}: an M1 of {model.image_dim} inputs; {args.data}'s images have {len(data.splits['test'][0][0])}")
    evaluator = m1.Evaluator(model, data.splits, mnist.EVAL_SEED)
    bound, rec, kl = evaluator.bound("test")
    print(f"M1 {args.weights}: test bound {bound:.2f} nats (reconstruction {rec:.2f}, KL {kl:.2f}), "
          f"{evaluator.active()} of {model.z_dim} latent units active")
    path = os.path.join(os.path.dirname(args.out), "M1_reconstructions.png")
    save_png(path, grid(evaluator, data), "M1: test images (left of each pair) and reconstructions")
    print(f"reconstructions: {path}")


def make_gif(frames):
    """M1_training.gif beside the frames file: at most GIF_FRAMES of its frames, spaced evenly in
    log(epoch), since the early epochs are where the pictures change."""
    if not os.path.exists(frames):
        raise UserError(f"{frames}: no frames; a training run keeps one at every evaluation "
                        "(`python train_M1.py -train` writes temp/M1/frames.npz)")
    epochs, pictures = read_frames(frames)
    chosen = np.unique(np.geomspace(1, len(epochs), min(GIF_FRAMES, len(epochs))).round().astype(int) - 1)
    path = os.path.join(os.path.dirname(os.path.abspath(frames)), "M1_training.gif")
    write_gif(path, pictures[chosen], [f"M1 after {e} epochs: test images, reconstructions" for e in epochs[chosen]])
    print(f"{len(chosen)} of {len(epochs)} frames -> {path}")


def train(args):
    config = args.config
    with RunFolder(args.out, args.weights) as run:
        data = load_data(args)
        splits = data.splits
        x_train = splits["train"][0]
        batch_size = config["batch_size"]
        steps = len(x_train) // batch_size
        keras.utils.set_random_seed(args.seed)
        pca = images.fit_pca(x_train, config["pca"]) if config["pca"] else None
        model = m1.M1(x_train.shape[1] if pca is None else len(pca.values), hidden=config["hidden"],
                      z_dim=config["z_dim"], init=config["init"], likelihood=config["likelihood"], pca=pca)
        n_fitted, x_train = min(len(x_train), 10_000), model.inputs(x_train)
        optimizer = keras.optimizers.Adam(config["lr"])
        optimizer.build(model.trainable_variables)
        rng = training.make_rng(args.seed, config["rng"])
        config = {**config, "eval": f"one-sample bound, images binarised once with seed {mnist.EVAL_SEED}, "
                                    "nats per image" if config["likelihood"] == "bernoulli" else
                  f"one-sample bound on the grey values, noise of seed {mnist.EVAL_SEED}, nats per image"}
        average = training.MovingAverage(model.trainable_variables, config["ema"])
        run.open_checkpoints(config, model=model, optimizer=optimizer, rng=rng, average=average)
        if pca is not None:
            run.log(f"PCA of the first {n_fitted} training images: {len(pca.values)} whitened components")
        evaluator = m1.Evaluator(model, splits, mnist.EVAL_SEED)
        step = m1.make_train_step(model, optimizer, tf.constant(x_train), rng, len(x_train), config["prior_sd"])

        def epoch_batches(epoch):
            order = np.random.default_rng([args.seed, epoch]).permutation(len(x_train))
            return (order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32),)

        def evaluate_epoch(epoch):
            (v_bound, v_rec, v_kl), t_bound = evaluator.bound("valid"), evaluator.bound("test")[0]
            return {"score": v_bound, "valid_bound": v_bound, "valid_reconstruction": v_rec,
                    "valid_kl": v_kl, "test_bound": t_bound, "active_units": evaluator.active()}

        def describe(train, ev):
            return (f"train bound {train['bound']:8.2f} (rec {train['reconstruction']:8.2f}, KL {train['kl']:6.2f}) | "
                    f"valid {ev['valid_bound']:8.2f} | test {ev['test_bound']:8.2f} | active {ev['active_units']:2d}")

        task = training.Task(model, optimizer, rng, training.compile_steps(step, model.trainable_variables, average),
                             epoch_batches, evaluate_epoch, describe,
                             lambda path: save_weights(path, model, model.get_config(), pca and pca.arrays()),
                             steps_per_call=max(1, min(steps, 50)), average=average,
                             picture=lambda epoch: add_frame(os.path.join(args.out, "frames.npz"), epoch,
                                                             grid(evaluator, data)))
        training.fit(run, task, config, args.weights, args.ckpt_minutes)
    make_gif(os.path.join(args.out, "frames.npz"))


def main(argv=None):
    args = parse_args(argv)
    training.set_threads(args.threads)
    if args.gif:
        make_gif(args.gif)
    elif args.train:
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    run_cli(main)
