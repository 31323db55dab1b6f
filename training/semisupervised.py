"""Training and evaluation of a semi-supervised model of the registry (train_M2.py's work): its inputs,
minibatches, task for the one training loop, metrics and log line, through the model's interface
(models/__init__.py), for any model registered."""
import math

import numpy as np

from ssdgm.data import images, mnist
from ssdgm.data.batches import class_sorted_minibatches, full_batches, minibatches
from ssdgm.models.blocks import classifier_entropy, error_rate, label_weight
from ssdgm.models.features import load_features
from ssdgm.models.weights import save_weights
from ssdgm.tf import keras
from ssdgm.training import loop
from ssdgm.training.run_folder import RunFolder

N_PRUNE = 1000  # unlabelled training images on which M1's active units are found, as the authors
N_GENERATIVE_EVAL = 1000  # validation images for the generative classification (ten passes each)


def main(job):
    """Trains (job.train) or evaluates the model of job, a training.cli.Job."""
    loop.set_threads(job.threads)
    (train if job.train else evaluate)(job)


def evaluate(job):
    name = job.spec.name
    hint = f"run `python train_M2.py -train --model {name}` with its --labels, --seed and --recipe to train it"
    model_module = job.spec.code()
    model, extra = model_module.load(job.weights, hint, kinds=(name,))
    splits = images.load(job.data, job.settings["subset"]).splits
    del splits["train"]  # only M2's inputs for the evaluation sets are needed
    features = load_features(job.spec.reads, splits, job.m1_weights, kept=extra.get("kept_units"),
                             binary=getattr(model, "likelihood", "bernoulli") == "bernoulli",
                             m1_sha256=str(extra.get("m1_sha256", "")))
    v_bound = model_module.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
    v_err = error_rate(model, features.eval["valid"], splits["valid"][1])
    t_err = error_rate(model, features.eval["test"], splits["test"][1])
    # The weights' name, not --labels and --seed: those need not be what made the weights given by --weights.
    print(f"{job.weights}: validation bound "
          f"L(x,y) {v_bound:.2f}, validation error {100 * v_err:.2f}%, test error {100 * t_err:.2f}%")


def train(job):
    config, seed = job.settings, job.settings["seed"]
    model_module = job.spec.code()
    with RunFolder(job.out, job.weights) as run:
        data = images.load(job.data, config["subset"])
        splits = data.splits
        x_train, y_train = splits["train"]
        n_labels = config["labels"]
        labelled, unlabelled = mnist.labelled_split(y_train, n_labels, seed, data.n_classes)
        if config.get("authors_leak"):
            config = {**config, "n_total": len(x_train)}
            x_train, y_train = (np.concatenate(pair) for pair in zip(splits["train"], splits["valid"]))
            splits["train"] = x_train, y_train
            batches = class_sorted_minibatches(labelled, y_train, config["labelled_per_batch"])
            unlabelled = np.arange(len(x_train))
            config["batches"] = len(batches[0])
        else:
            batches = minibatches(labelled, unlabelled, config["batches"], seed, config.get("labelled_per_batch"))
        prune = x_train[(unlabelled if len(unlabelled) else labelled)[:N_PRUNE]]
        features = load_features(job.spec.reads, splits, job.m1_weights, prune=prune,
                                 binary=config.get("likelihood", "bernoulli") == "bernoulli")
        keras.utils.set_random_seed(seed)
        model = model_module.build(job.spec.name, config, features.dim, data.n_classes)
        optimizer = keras.optimizers.Adam(config["lr"])
        optimizer.build(model.trainable_variables)
        rng = loop.make_rng(seed, config["rng"])
        # With unlabelled images the model is a classifier and is chosen on validation error; with every
        # label known, it is a generator (for the analogies) and is chosen on the validation bound.
        selected_on = "validation error" if len(unlabelled) else "validation bound"
        beta = label_weight(config["alpha"], config.get("n_total", len(x_train)), n_labels)
        config = {**config, "beta": beta, "selected_on": selected_on, "m1_sha256": features.m1_sha256,
                  "kept_units": None if features.kept is None else features.kept.tolist()}
        average = loop.MovingAverage(model.trainable_variables, config["ema"])
        # The warm-up has its own Adam, so that the paper's objective starts from fresh moments at --lr.
        warm_optimizer = keras.optimizers.Adam(config["warmup_lr"])
        warm_optimizer.build(model.trainable_variables)
        run.open_checkpoints(config, model=model, optimizer=optimizer, rng=rng, average=average,
                             warm_optimizer=warm_optimizer)
        if features.kept is not None:
            run.log(f"M1 {job.m1_weights}: kept {len(features.kept)} active units {features.kept.tolist()}")
        run.log(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, {config['batches']} minibatches of "
                f"{batches[0].shape[1]} + {batches[1].shape[1]}; beta = {beta:g}; weights chosen on {selected_on}")
        run.log(f"entropy: mean H(q(y|x)) on the validation images, nats ({math.log(10):.3f} is a uniform q); "
                f"gen err: validation error of argmax_y L(x, y) on the first {N_GENERATIVE_EVAL}")
        step = model_module.train_step(config, model, optimizer, features, y_train, rng)

        def evaluate_epoch(epoch):
            v_err = error_rate(model, features.eval["valid"], splits["valid"][1])
            v_bound = model_module.validation_bound(model, features.valid_bound_x, splits["valid"][1], mnist.EVAL_SEED)
            gen_err = model_module.generative_error_rate(model, features.valid_bound_x[:N_GENERATIVE_EVAL],
                                               splits["valid"][1][:N_GENERATIVE_EVAL], mnist.EVAL_SEED)
            metrics = {"score": -v_err if len(unlabelled) else v_bound, "valid_error": v_err,
                       "test_error": error_rate(model, features.eval["test"], splits["test"][1]),
                       "valid_labelled_bound": v_bound,
                       "valid_entropy": classifier_entropy(model, features.eval["valid"]),
                       "valid_generative_error": gen_err}
            for key, (measure, _) in model_module.LOG_FIELDS.items():
                metrics[key] = measure(model, features.eval["valid"])
            return metrics

        def describe(train, ev):
            return (f"L(x,y) {train['labelled_bound']:7.2f} | U(x) {train['unlabelled_bound']:7.2f} "
                    f"(rec {train['reconstruction']:7.2f}, KL {train['kl']:5.2f}) | log q(y|x) {train['log_qy']:7.4f} | "
                    f"valid L(x,y) {ev['valid_labelled_bound']:7.2f} | valid err {100 * ev['valid_error']:5.2f}% | "
                    f"test err {100 * ev['test_error']:5.2f}% | entropy {ev['valid_entropy']:5.3f} | "
                    f"gen err {100 * ev['valid_generative_error']:5.2f}%"
                    + "".join(" | " + form.format(ev[key]) for key, (_, form) in model_module.LOG_FIELDS.items()))

        extra = {"m1_sha256": features.m1_sha256}
        if features.kept is not None:
            extra["kept_units"] = features.kept
        task = loop.Task(model, optimizer, rng, loop.compile_steps(step, model.trainable_variables, average),
                             lambda epoch: batches, evaluate_epoch, describe,
                             lambda path: save_weights(path, model, model.get_config(), extra), average=average)
        if config["warmup_steps"]:
            warm_step = model_module.train_step(config, model, warm_optimizer, features, y_train, rng)
            task.warm_up = loop.Phase(
                f"warm-up: {config['warmup_steps']} full-batch steps on the labelled part",
                loop.compile_steps(warm_step, model.trainable_variables),
                full_batches(labelled, config["warmup_steps"]), config["warmup_lr"])
        loop.fit(run, task, config, job.weights, job.ckpt_minutes)


