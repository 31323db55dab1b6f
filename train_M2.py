"""Train the stacked M1+M2 classifier (`-train`), or evaluate the shipped weights (no flag).

    python train_M2.py -train                 # M1+M2 with 100 labels on the shipped M1
    python train_M2.py                        # validation and test error of the shipped N=100 model
    python train_M2.py -train --model m2 --labels 100   # M2 alone on pixels (the paper's "M2")
    python train_M2.py -train --model m2 --labels all --recipe authors --epochs 400   # the analogy model
    python train_M2.py -train --model m2 --labels all --recipe styles   # the 2-D z model of the styles figure
    python train_M2.py -train --model adgm --threads 2      # the auxiliary deep generative model (or sdgm)
"""
import math
import os

from cli import (TRAINING_ONLY, ArgumentParser, UserError, check_training_flags, count, departures, number,
                 positive_int, quiet_tensorflow, run_cli, training_flags, weights_path)
import recipes
from data import images, mnist

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "weights")
AUXILIARY = ("adgm", "sdgm")
# Flags of the auxiliary models only, and why M2 has no use for them.
AUXILIARY_ONLY = {"samples": "M2 draws one z per image", "fixed_q_a": "M2 has no auxiliary variable",
                  "batchnorm": "M2's networks are not normalised", "first_code": "M2 has no auxiliary variable",
                  "authors_leak": "M2 has no auxiliary variable"}


def parse_args(argv=None):
    recipe_names = sorted({r for m in recipes.FOLDERS for r in recipes.RECIPES[m]})
    p = ArgumentParser(description="M1+M2 (or M2 alone) of Kingma et al. 2014 on MNIST.",
                       parents=[training_flags(mnist.DEFAULT_PATH, recipe_names)])
    p.add_argument("--model", dest="model_name", choices=list(recipes.FOLDERS), default="m1m2",
                   help="m1m2: M2 on M1's latent features (default); m2: M2 on pixels; adgm, sdgm: the "
                        "auxiliary deep generative models of Maaloe et al. 2016 on pixels")
    p.add_argument("--labels", default="100",
                   help="labelled training images N, a multiple of 10, or 'all' (default 100)")
    p.add_argument("--alpha", type=number(float, 0.0, 1e6, "a number in [0, 1e6]"),
                   help="classification weight: beta = alpha * N_total / N_labelled (default: the recipe's, 0.1)")
    p.add_argument("--batches", type=positive_int,
                   help="minibatches per epoch, at most N (default: the recipe's, 100 for N=100, else 200, "
                        "as the authors)")
    p.add_argument("--warmup-steps", type=count,
                   help="full-batch Adam steps on the labelled part of the objective alone, L(x, y) + beta "
                        "log q(y|x) over the labelled images, before the first epoch of a run with unlabelled "
                        "images (default: the recipe's; fast M2 alone: 2000, at 1e-3)")
    p.add_argument("--samples", type=positive_int,
                   help="draws of (a, z) per image in a training step (adgm and sdgm; default: the recipe's, "
                        "fast 1, authors 10)")
    p.add_argument("--fixed-q-a", dest="fixed_q_a", action="store_const", const=True,
                   help="keep q(a|x) at its random initial weights, as the ADGM authors' first code (adgm and "
                        "sdgm; default: trained, as the paper)")
    p.add_argument("--batchnorm", action="store_const", const=True,
                   help="batch normalisation in every hidden layer, as the auxiliary models' authors' later code "
                        "(adgm and sdgm; default: none, as their paper)")
    p.add_argument("--first-code", dest="first_code", action="store_const", const=True,
                   help="the ADGM authors' first released code's model: q(a|x) at its initial weights, q(z|y, x) "
                        "without a, p(a) = N(0, I) for p(a|x, y, z) (adgm only; default: the paper's model)")
    p.add_argument("--authors-leak", dest="authors_leak", action="store_const", const=True,
                   help="the ADGM authors' first code's computation, which leaks labels: the validation images in "
                        "the unlabelled pool, that pool in class order and its minibatches in a fixed order, and "
                        "their average over draws that mixes images (with --first-code; for showing the leak, never "
                        "a result: its weights stay in --out)")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"],
                   help="p(x|y, z) of M2 on pixels: bernoulli, on the grey values binarised afresh (default: the "
                        "recipe's); gaussian, on the values themselves (m2 only)")
    p.add_argument("--m1-weights", help="M1 weights file (m1m2 only; default weights/M1/m1.npz, or "
                                        "weights/M1/<data>_m1.npz for another --data; or the file of the M1 "
                                        "that the M2 weights name, beside it)")
    args = p.parse_args(argv)
    check_training_flags(args, TRAINING_ONLY + ("alpha", "batches", "warmup_steps", "likelihood", *AUXILIARY_ONLY))
    if args.likelihood and args.model_name != "m2":
        raise UserError(f"--likelihood is for --model m2: {args.model_name}'s p(x|.) is "
                        + ("a Gaussian over M1's features" if args.model_name == "m1m2" else "a Bernoulli"))
    if args.m1_weights and args.model_name != "m1m2":
        raise UserError(f"--m1-weights is for --model m1m2: {args.model_name} reads pixels")
    for flag, why in AUXILIARY_ONLY.items():
        if getattr(args, flag) and args.model_name not in AUXILIARY:
            raise UserError(f"--{flag.replace('_', '-')} is for --model adgm or sdgm: {why}")
    if args.first_code and args.model_name != "adgm":
        raise UserError("--first-code is the ADGM authors' first code: --model adgm only")
    if args.authors_leak and not args.first_code:
        raise UserError("--authors-leak is the computation of the ADGM authors' first code: add --first-code")
    if args.first_code:
        args.fixed_q_a = True  # part of that model, and so in its record
    start = images.prefix(args.data)
    m1_default = os.path.join(WEIGHTS, "M1", start + "m1.npz")  # the M1 that train_M1.py ships for this data
    departed = departures(args, {"model_name": args.model_name, "labels": args.labels, "data": args.data,
                                 "subset": 0, "m1_weights": m1_default})
    n_train, n_classes = images.sizes(args.data, args.subset)
    if args.labels != "all" and not (args.labels.isascii() and args.labels.isdigit()):
        raise UserError(f"--labels must be a number or 'all', got {args.labels!r}")
    labels = "all" if args.labels == "all" or int(args.labels) == n_train else int(args.labels)
    mnist.check_label_count(n_train if labels == "all" else labels, n_train, n_classes)
    args.config = {**recipes.resolve(args.model_name, args, labels, n_train), "seed": args.seed,
                   "subset": args.subset, **({"data": os.path.basename(args.data)} if start else {})}
    name = f"{start}{args.model_name}_labels{labels}_seed{args.seed}" + recipes.suffix(args.model_name, args.config["recipe"])
    folder = recipes.FOLDERS[args.model_name]
    if args.config.get("authors_leak"):
        name += "_authors_leak"
    args.out = args.out or os.path.join(HERE, "temp", folder, name)
    args.weights = weights_path(args, os.path.join(WEIGHTS, folder, name + ".npz"), args.out, WEIGHTS, departed)
    args.m1_weights = args.m1_weights or m1_default
    return args


if __name__ == "__main__":
    run_cli(parse_args)  # --help and every flag's error at once, before TensorFlow loads (seconds)
quiet_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import training  # noqa: E402
from data.batches import class_sorted_minibatches, full_batches, minibatches  # noqa: E402
from files import save_weights  # noqa: E402
from models import adgm, m2  # noqa: E402
from models.features import load_features  # noqa: E402
from run_folder import RunFolder  # noqa: E402

N_PRUNE = 1000  # unlabelled training images on which M1's active units are found, as the authors
N_GENERATIVE_EVAL = 1000  # validation images for the generative classification (ten passes each)
MODULES = {"m1m2": m2, "m2": m2, "adgm": adgm, "sdgm": adgm}


def source(model_name):
    """What the model reads: 'm1m2' (M1's features) or 'm2' (pixels)."""
    return "m1m2" if model_name == "m1m2" else "m2"


def evaluate(args):
    hint = (f"run `python train_M2.py -train --model {args.model_name} --labels {args.labels} "
            f"--recipe {args.config['recipe']}` to train it")
    model_module = MODULES[args.model_name]
    model, extra = model_module.load(args.weights, hint, kinds=(args.model_name,))
    splits = images.load(args.data, args.subset).splits
    del splits["train"]  # only M2's inputs for the evaluation sets are needed
    features = load_features(source(args.model_name), splits, args.m1_weights, kept=extra.get("kept_units"),
                             binary=getattr(model, "likelihood", "bernoulli") == "bernoulli",
                             m1_sha256=str(extra.get("m1_sha256", "")))
    v_bound = model_module.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
    v_err = model_module.error_rate(model, features.eval["valid"], splits["valid"][1])
    t_err = model_module.error_rate(model, features.eval["test"], splits["test"][1])
    # The weights' name, not --labels and --seed: those need not be what made the weights given by --weights.
    print(f"{args.weights}: validation bound "
          f"L(x,y) {v_bound:.2f}, validation error {100 * v_err:.2f}%, test error {100 * t_err:.2f}%")


def train(args):
    config = args.config
    with RunFolder(args.out, args.weights) as run:
        data = images.load(args.data, args.subset)
        splits = data.splits
        x_train, y_train = splits["train"]
        n_labels = config["labels"]
        labelled, unlabelled = mnist.labelled_split(y_train, n_labels, args.seed, data.n_classes)
        if config.get("authors_leak"):
            config = {**config, "n_total": len(x_train)}
            x_train, y_train = (np.concatenate(pair) for pair in zip(splits["train"], splits["valid"]))
            splits["train"] = x_train, y_train
            batches = class_sorted_minibatches(labelled, y_train, config["labelled_per_batch"])
            unlabelled = np.arange(len(x_train))
            config["batches"] = len(batches[0])
        else:
            batches = minibatches(labelled, unlabelled, config["batches"], args.seed, config.get("labelled_per_batch"))
        prune = x_train[(unlabelled if len(unlabelled) else labelled)[:N_PRUNE]]
        features = load_features(source(args.model_name), splits, args.m1_weights, prune=prune,
                                 binary=config.get("likelihood", "bernoulli") == "bernoulli")
        keras.utils.set_random_seed(args.seed)
        model_module = MODULES[args.model_name]
        model = model_module.build(args.model_name, config, features.dim, data.n_classes)
        optimizer = keras.optimizers.Adam(config["lr"])
        optimizer.build(model.trainable_variables)
        rng = training.make_rng(args.seed, config["rng"])
        # With unlabelled images the model is a classifier and is chosen on validation error; with every
        # label known, it is a generator (for the analogies) and is chosen on the validation bound.
        selected_on = "validation error" if len(unlabelled) else "validation bound"
        beta = m2.label_weight(config["alpha"], config.get("n_total", len(x_train)), n_labels)
        config = {**config, "beta": beta, "selected_on": selected_on, "m1_sha256": features.m1_sha256,
                  "kept_units": None if features.kept is None else features.kept.tolist()}
        average = training.MovingAverage(model.trainable_variables, config["ema"])
        # The warm-up has its own Adam, so that the paper's objective starts from fresh moments at --lr.
        warm_optimizer = keras.optimizers.Adam(config["warmup_lr"])
        warm_optimizer.build(model.trainable_variables)
        run.open_checkpoints(config, model=model, optimizer=optimizer, rng=rng, average=average,
                             warm_optimizer=warm_optimizer)
        if features.kept is not None:
            run.log(f"M1 {args.m1_weights}: kept {len(features.kept)} active units {features.kept.tolist()}")
        run.log(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, {config['batches']} minibatches of "
                f"{batches[0].shape[1]} + {batches[1].shape[1]}; beta = {beta:g}; weights chosen on {selected_on}")
        run.log(f"entropy: mean H(q(y|x)) on the validation images, nats ({math.log(10):.3f} is a uniform q); "
                f"gen err: validation error of argmax_y L(x, y) on the first {N_GENERATIVE_EVAL}")
        step = model_module.train_step(config, model, optimizer, features, y_train, rng)

        def evaluate_epoch(epoch):
            v_err = model_module.error_rate(model, features.eval["valid"], splits["valid"][1])
            v_bound = model_module.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
            gen_err = model_module.generative_error_rate(model, features.valid_bound_x[:N_GENERATIVE_EVAL],
                                               splits["valid"][1][:N_GENERATIVE_EVAL], mnist.EVAL_SEED)
            metrics = {"score": -v_err if len(unlabelled) else v_bound, "valid_error": v_err,
                       "test_error": model_module.error_rate(model, features.eval["test"], splits["test"][1]),
                       "valid_labelled_bound": v_bound,
                       "valid_entropy": model_module.classifier_entropy(model, features.eval["valid"]),
                       "valid_generative_error": gen_err}
            if model_module is adgm:
                metrics["valid_a_spread"] = adgm.auxiliary_spread(model, features.eval["valid"])
            return metrics

        def describe(train, ev):
            return (f"L(x,y) {train['labelled_bound']:7.2f} | U(x) {train['unlabelled_bound']:7.2f} "
                    f"(rec {train['reconstruction']:7.2f}, KL {train['kl']:5.2f}) | log q(y|x) {train['log_qy']:7.4f} | "
                    f"valid L(x,y) {ev['valid_labelled_bound']:7.2f} | valid err {100 * ev['valid_error']:5.2f}% | "
                    f"test err {100 * ev['test_error']:5.2f}% | entropy {ev['valid_entropy']:5.3f} | "
                    f"gen err {100 * ev['valid_generative_error']:5.2f}%"
                    + (f" | a spread {ev['valid_a_spread']:4.2f}" if "valid_a_spread" in ev else ""))

        extra = {"m1_sha256": features.m1_sha256}
        if features.kept is not None:
            extra["kept_units"] = features.kept
        task = training.Task(model, optimizer, rng, training.compile_steps(step, model.trainable_variables, average),
                             lambda epoch: batches, evaluate_epoch, describe,
                             lambda path: save_weights(path, model, model.get_config(), extra), average=average)
        if config["warmup_steps"]:
            warm_step = model_module.train_step(config, model, warm_optimizer, features, y_train, rng)
            task.warm_up = training.Phase(
                f"warm-up: {config['warmup_steps']} full-batch steps on the labelled part",
                training.compile_steps(warm_step, model.trainable_variables),
                full_batches(labelled, config["warmup_steps"]), config["warmup_lr"])
        training.fit(run, task, config, args.weights, args.ckpt_minutes)


def main(argv=None):
    args = parse_args(argv)
    training.set_threads(args.threads)
    if args.train:
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    run_cli(main)
