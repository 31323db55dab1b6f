"""Train the stacked M1+M2 classifier (`-train`), or evaluate the shipped weights (no flag).

    python train_M2.py -train                 # M1+M2 with 100 labels on the shipped M1
    python train_M2.py                        # validation and test error of the shipped N=100 model
    python train_M2.py -train --model m2 --labels 100   # M2 alone on pixels (the paper's "M2")
    python train_M2.py -train --model m2 --labels all   # M2 on pixels for run_analogy.py
"""
import math
import os

from common import UserError, ArgumentParser, quiet_tensorflow, run_cli, save_weights

quiet_tensorflow()
import keras  # noqa: E402

import training  # noqa: E402
from data import mnist  # noqa: E402
from data.features import full_batches, load_features, minibatches  # noqa: E402
from models import m1, m2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N_PRUNE = 1000  # unlabelled training images on which M1's active units are found, as the authors
N_GENERATIVE_EVAL = 1000  # validation images for the generative classification (ten passes each)
# M2 alone from the paper's start sits at a fixed point: the decoder ignores y, so every L(x, y) is
# alike and U(x) holds q(y|x) uniform (see the README). A warm-up on the labelled part of J first,
# at this rate, teaches the decoder the digit before the unlabelled images weigh in.
WARMUP_LR = 1e-3


def parse_args(argv=None):
    p = ArgumentParser(description="M1+M2 (or M2 alone) of Kingma et al. 2014 on MNIST.",
                       parents=[training.shared_flags(mnist.DEFAULT_PATH)])
    p.add_argument("--model", dest="model_name", choices=["m1m2", "m2"], default="m1m2",
                   help="m1m2: M2 on M1's latent features (default); m2: M2 on pixels")
    p.add_argument("--labels", default="100",
                   help="labelled training images N, a multiple of 10, or 'all' (default 100)")
    p.add_argument("--alpha", type=training.number(float, 0.0, 1e6, "a number in [0, 1e6]"), default=0.1,
                   help="classification weight: beta = alpha * N_total / N_labelled (default 0.1)")
    p.add_argument("--batches", type=training.positive_int,
                   help="minibatches per epoch (default: 100 for N=100, else 200, as the authors)")
    p.add_argument("--warmup-steps", type=training.count,
                   help="full-batch Adam steps (rate %g) on the labelled part of the objective alone, "
                        "L(x, y) + beta log q(y|x) over the labelled images, before the first epoch of a "
                        "run with unlabelled images (default: the recipe's; fast M2 alone: 2000)" % WARMUP_LR)
    p.add_argument("--m1-weights", default=m1.DEFAULT_WEIGHTS, help="M1 weights file (m1m2 only)")
    args = p.parse_args(argv)
    training.apply_recipe(p, args, args.model_name)
    n_train = args.subset or mnist.N_TRAIN
    if args.labels == "all":
        args.n_labels = n_train
    elif args.labels.isdigit():
        args.n_labels = int(args.labels)
    else:
        raise UserError(f"--labels must be a number or 'all', got {args.labels!r}")
    mnist.check_label_count(args.n_labels, n_train)
    fully_labelled = args.n_labels == n_train
    if args.hidden is None:
        # m2: the paper's one layer of 500 (two failed, see the README); with every label, the
        # analogy model's two. m1m2: the authors' code, 300 units for N=100, else 500.
        if args.model_name == "m2":
            args.hidden = [500, 500] if fully_labelled else [500]
        else:
            args.hidden = [300 if args.n_labels == 100 else 500]
    args.batches = min(args.batches or (100 if args.n_labels == 100 else 200), args.n_labels)
    name = (f"{args.model_name}_labels{'all' if fully_labelled else args.n_labels}_seed{args.seed}"
            + training.recipe_suffix(args.model_name, args.recipe))
    args.weights = args.weights or os.path.join(args.out or os.path.join(HERE, "weights", "M2"), name + ".npz")
    args.out = args.out or os.path.join(HERE, "temp", "M2", name)
    return args


def evaluate(args):
    hint = (f"run `python train_M2.py -train --model {args.model_name} --labels {args.labels} --recipe {args.recipe}` "
            "to train it")
    model, extra = m2.load(args.weights, hint)
    splits = mnist.load_splits(args.data, args.subset)
    del splits["train"]  # only M2's inputs for the evaluation sets are needed
    features = load_features(args.model_name, splits, args.m1_weights, kept=extra.get("kept_units"),
                             m1_sha256=str(extra.get("m1_sha256", "")))
    v_bound = m2.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
    v_err = m2.error_rate(model, features.eval["valid"], splits["valid"][1])
    t_err = m2.error_rate(model, features.eval["test"], splits["test"][1])
    # The weights' name, not --labels and --seed: those need not be what made the weights given by --weights.
    print(f"{args.weights}: validation bound "
          f"L(x,y) {v_bound:.2f}, validation error {100 * v_err:.2f}%, test error {100 * t_err:.2f}%")


def train(args):
    with training.RunFolder(args.out, args.weights) as run:
        splits = mnist.load_splits(args.data, args.subset)
        x_train, y_train = splits["train"]
        labelled, unlabelled = mnist.labelled_split(y_train, args.n_labels, args.seed)
        batches = minibatches(labelled, unlabelled, args.batches, args.seed)
        prune = x_train[(unlabelled if len(unlabelled) else labelled)[:N_PRUNE]]
        features = load_features(args.model_name, splits, args.m1_weights, prune=prune)
        keras.utils.set_random_seed(args.seed)
        model = m2.M2(features.dim, args.hidden, args.z_dim,
                      likelihood="gaussian" if args.model_name == "m1m2" else "bernoulli")
        optimizer = keras.optimizers.Adam(args.lr)
        optimizer.build(model.trainable_variables)
        rng = training.make_rng(args.seed)
        warmup_steps = args.warmup_steps if len(unlabelled) else 0
        config = {"model": args.model_name, "labels": args.n_labels, "seed": args.seed, "alpha": args.alpha,
                  "hidden": args.hidden, "z_dim": args.z_dim, "lr": args.lr, "batches": args.batches,
                  "subset": args.subset, "m1_sha256": features.m1_sha256, "warmup_steps": warmup_steps,
                  "ema": args.ema}
        average = training.MovingAverage(model.trainable_variables, args.ema)
        run.open_checkpoints(config, model=model, optimizer=optimizer, rng=rng, average=average)
        if features.kept is not None:
            run.log(f"M1 {args.m1_weights}: kept {len(features.kept)} active units {features.kept.tolist()}")
        # With unlabelled images the model is a classifier and is chosen on validation error; with every
        # label known, it is a generator (for the analogies) and is chosen on the validation bound.
        selected_on = "validation error" if len(unlabelled) else "validation bound"
        beta = m2.label_weight(args.alpha, len(x_train), args.n_labels)
        run.log(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, {args.batches} minibatches of "
                f"{batches[0].shape[1]} + {batches[1].shape[1]}; beta = {beta:g}; weights chosen on {selected_on}")
        run.log(f"entropy: mean H(q(y|x)) on the validation images, nats ({math.log(10):.3f} is a uniform q); "
                f"gen err: validation error of argmax_y L(x, y) on the first {N_GENERATIVE_EVAL}")
        step = m2.make_train_step(model, optimizer, features, y_train, rng, args.alpha, args.n_labels)

        def evaluate_epoch(epoch):
            v_err = m2.error_rate(model, features.eval["valid"], splits["valid"][1])
            v_bound = m2.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
            gen_err = m2.generative_error_rate(model, features.valid_bound_x[:N_GENERATIVE_EVAL],
                                               splits["valid"][1][:N_GENERATIVE_EVAL], mnist.EVAL_SEED)
            return {"score": -v_err if len(unlabelled) else v_bound, "valid_error": v_err,
                    "test_error": m2.error_rate(model, features.eval["test"], splits["test"][1]),
                    "valid_labelled_bound": v_bound, "valid_entropy": m2.classifier_entropy(model, features.eval["valid"]),
                    "valid_generative_error": gen_err}

        def describe(train, ev):
            return (f"L(x,y) {train['labelled_bound']:7.2f} | U(x) {train['unlabelled_bound']:7.2f} "
                    f"(rec {train['reconstruction']:7.2f}, KL {train['kl']:5.2f}) | log q(y|x) {train['log_qy']:7.4f} | "
                    f"valid L(x,y) {ev['valid_labelled_bound']:7.2f} | valid err {100 * ev['valid_error']:5.2f}% | "
                    f"test err {100 * ev['test_error']:5.2f}% | entropy {ev['valid_entropy']:5.3f} | "
                    f"gen err {100 * ev['valid_generative_error']:5.2f}%")

        extra = {"m1_sha256": features.m1_sha256}
        if features.kept is not None:
            extra["kept_units"] = features.kept
        task = training.Task(model, optimizer, rng, training.compile_steps(step, model.trainable_variables, average),
                             lambda epoch: batches, evaluate_epoch, describe,
                             lambda path: save_weights(path, model, model.get_config(), extra), average=average)
        if warmup_steps:
            # Its own Adam, so that the paper's objective starts from fresh moments at --lr.
            warm_optimizer = keras.optimizers.Adam(WARMUP_LR)
            warm_optimizer.build(model.trainable_variables)
            warm_step = m2.make_train_step(model, warm_optimizer, features, y_train, rng, args.alpha, args.n_labels)
            task.warm_up = training.Phase(
                f"warm-up: {warmup_steps} full-batch steps on the labelled part", training.compile_steps(
                    warm_step, model.trainable_variables),
                full_batches(labelled, warmup_steps), WARMUP_LR)
        record = {"recipe": args.recipe, "model": args.model_name, "labels": args.n_labels, "seed": args.seed,
                  "lr": args.lr, "lr_decay_epochs": args.lr_decay_epochs, "epochs_planned": args.epochs,
                  "ema": args.ema, "alpha": args.alpha, "beta": beta, "hidden": args.hidden, "z_dim": args.z_dim,
                  "batches": args.batches, "warmup_steps": warmup_steps, "warmup_lr": WARMUP_LR if warmup_steps else None,
                  "selected_on": selected_on, "m1_weights_sha256": features.m1_sha256,
                  "kept_units": None if features.kept is None else features.kept.tolist()}
        training.fit(run, task, args, record)


def main(argv=None):
    args = parse_args(argv)
    training.set_threads(args.threads)
    if args.train:
        train(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    run_cli(main)
