"""The one training loop of M1 and M2, and the flags, run folder and checkpoints around it.

A script builds a `Task` (model, optimizer, random-number generator, a compiled chunk of training
steps, the epoch's minibatches, an evaluation) and hands it to `fit`, which runs the epochs: the
learning-rate schedule, the finite check after every chunk of steps, evaluation every few epochs,
the best-on-validation weights with their JSON record and log, TensorBoard scalars and checkpoints.
A resumed run repeats an uninterrupted one exactly: the epoch counter, best score, training time,
optimizer state and generator state are all in the checkpoint.
"""
import argparse
import contextlib
import dataclasses
import fcntl
import math
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from common import UserError, atomic_write, check_writable, copy_atomic, read_json, write_json

MAX_SEED = 2 ** 32 - 1


def number(kind, low, high, what):
    """An argparse type: text read as kind (int or float) and required to lie in [low, high]."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan  # fails the range test below
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


seed_value = number(int, 0, MAX_SEED, f"an integer in [0, {MAX_SEED}]")
positive_int = number(int, 1, math.inf, "an integer of at least 1")
count = number(int, 0, math.inf, "an integer of at least 0")
positive_float = number(float, math.ulp(0.0), sys.float_info.max, "a finite number above 0")


def shared_flags(data_path):
    """The flags both training scripts take, as a parent parser (help text in the scripts' --help)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-train", "--train", action="store_true",
                   help="train (resuming from --out if a checkpoint is there); without it, evaluate --weights")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seeds the labelled subset, minibatches, initial weights and noise (default 0)")
    p.add_argument("--recipe", choices=["fast", "authors"],
                   help="fast: this project's schedule; authors: the authors' constant rate and epochs "
                        "(default: the recipe of the shipped weights, fast for every model); --epochs, "
                        "--lr and --lr-decay-epochs override either")
    p.add_argument("--epochs", type=positive_int, help="epochs in all (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, help="Adam's peak learning rate (default: the recipe's)")
    p.add_argument("--lr-decay-epochs", type=count,
                   help="anneal the rate linearly towards 0 over the last K epochs (default: the "
                        "recipe's, at most --epochs); a schedule, so it may change when resuming")
    p.add_argument("--ema", type=number(float, 0.0, 0.999999, "a number in [0, 0.999999]"),
                   help="momentum per step of a moving average of the weights, which is evaluated, chosen "
                        "on and saved instead of the last weights (default: the recipe's; 0, none, in every "
                        "recipe but M1's fast one)")
    p.add_argument("--hidden", type=positive_int, nargs="+", help="hidden layer sizes of each MLP")
    p.add_argument("--z-dim", type=positive_int, default=50, help="latent dimensions (default 50)")
    p.add_argument("--eval-every", type=positive_int, default=10,
                   help="epochs between evaluations (default 10, as the authors)")
    p.add_argument("--ckpt-minutes", type=positive_float, default=3.0,
                   help="minutes between checkpoints, besides one at every evaluation (default 3)")
    p.add_argument("--threads", type=count, default=0,
                   help="CPU threads for TensorFlow (default 0: all); two runs of 1 thread each, "
                        "pinned with taskset, train about 30%% more epochs in all than one of 2")
    p.add_argument("--out", help="run folder: checkpoints, log, TensorBoard scalars")
    p.add_argument("--weights", help="best-on-validation weights file, written when training, read "
                                     "otherwise; in --out when --out is given, so that a trial run "
                                     "never replaces shipped weights")
    p.add_argument("--data", default=data_path, help="MNIST .npz file")
    p.add_argument("--subset", type=count, default=0,
                   help="use only the first N images of each split (quick checks; 0 = all)")
    return p


# The recipes of each model, its default first: the one that made its shipped weights. fast: a peak
# rate annealed linearly to 0 over the last epochs (for M1 also a minibatch of 200, a moving average
# of the weights and a N(0, 0.3^2) weight prior, against the over-fitting that ended every M1 run;
# for M2 alone a warm-up on the labelled part of the objective first: see train_M2.py); authors:
# their constant rate (and, for M1, their minibatch of 1000 and N(0, 1) prior) for their 3000 epochs.
# Weights of another recipe than the default carry its name.
AUTHORS_M2 = {"epochs": 3000, "lr": 3e-4, "lr_decay_epochs": 0, "warmup_steps": 0, "ema": 0.0}
RECIPES = {
    "m1": {"fast": {"epochs": 640, "lr": 6e-4, "lr_decay_epochs": 310, "batch_size": 200, "ema": 0.9996,
                    "prior_sd": 0.3},
           "authors": {"epochs": 3000, "lr": 3e-4, "lr_decay_epochs": 0, "batch_size": 1000, "ema": 0.0,
                       "prior_sd": 1.0}},
    "m1m2": {"fast": {"epochs": 450, "lr": 1e-3, "lr_decay_epochs": 250, "warmup_steps": 0, "ema": 0.0},
             "authors": AUTHORS_M2},
    "m2": {"fast": {"epochs": 120, "lr": 3e-3, "lr_decay_epochs": 40, "warmup_steps": 2000, "ema": 0.0},
           "authors": AUTHORS_M2},
}


def recipe_suffix(model_name, recipe):
    """'' for the model's default recipe, else '_<recipe>': what its weights' names carry."""
    return "" if recipe == next(iter(RECIPES[model_name])) else "_" + recipe


def apply_recipe(parser, args, model_name):
    """Sets --recipe (default: the model's first) and fills the flags left unset (--epochs, --lr,
    --lr-decay-epochs, ...) from it. A recipe's annealing is cut to --epochs when only --epochs is
    given (short trial runs)."""
    args.recipe = args.recipe or next(iter(RECIPES[model_name]))
    decay_given = args.lr_decay_epochs is not None
    for name, value in RECIPES[model_name][args.recipe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not decay_given:
        args.lr_decay_epochs = min(args.lr_decay_epochs, args.epochs)
    if args.lr_decay_epochs > args.epochs:
        parser.error("--lr-decay-epochs must be at most --epochs")


def set_threads(threads):
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


class MovingAverage(tf.Module):
    """An exponential moving average of variables (Polyak averaging), evaluated and saved in their
    place. It is updated once per chunk of k training steps with momentum ** k: a sample of the
    trajectory every k steps costs a k-th of the memory traffic of an update after every step (which
    made an M1 epoch 11.9-12.5 s against 9.7 s in a short check, evaluation included). With momentum
    0 it keeps nothing and every method does nothing."""

    def __init__(self, variables, momentum):
        super().__init__()
        self.momentum = momentum
        self.averages = [tf.Variable(v, trainable=False) for v in variables] if momentum else []

    def restart(self, variables):
        """Averages from variables' current values on (after a warm-up)."""
        for average, v in zip(self.averages, variables):
            average.assign(v)

    def update(self, variables, steps):
        """Called in a compiled chunk of `steps` steps, after them."""
        if self.averages:
            m = self.momentum ** tf.cast(steps, tf.float32)
            for average, v in zip(self.averages, variables):
                average.assign(m * average + (1.0 - m) * v)

    @contextlib.contextmanager
    def applied(self, variables):
        """Within the block, variables hold their averages; their own values are put back after it."""
        saved = [v.numpy() for v in variables] if self.averages else []
        for average, v in zip(self.averages, variables):
            v.assign(average)
        try:
            yield
        finally:
            for v, value in zip(variables, saved):
                v.assign(value)


def learning_rate(lr, epochs, decay_epochs, epoch):
    """The rate for epoch (from 1): lr, then linear towards 0 over the last decay_epochs epochs,
    reaching lr / decay_epochs in the last one."""
    left = epochs - epoch + 1
    if left > decay_epochs:
        return lr
    return lr * left / decay_epochs


def make_rng(seed, alg="threefry"):
    """The run's generator (checkpointed with it). ThreeFry rather than the default Philox: under
    XLA on a CPU it made an M2 epoch about 15% faster."""
    return tf.random.Generator.from_seed(seed, alg=alg)


def compile_steps(step, variables, average=None):
    """One XLA program that runs `step` over a chunk of minibatches.

    step(*batch) applies one optimizer update and returns a dict of scalar terms. The program takes
    arrays [k, ...] (row i is step i's minibatch), updates `average` (a MovingAverage of variables)
    after the k steps, and returns the terms summed over them and whether every variable is still
    finite; looping inside one program saves a Python round trip per step.
    """
    @tf.function(jit_compile=True)
    def run(*batches):
        totals = step(*[b[0] for b in batches])
        for i in tf.range(1, tf.shape(batches[0])[0]):
            terms = step(*[b[i] for b in batches])
            totals = {k: totals[k] + terms[k] for k in totals}
        if average is not None:
            average.update(variables, tf.shape(batches[0])[0])
        finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))
        return totals, finite
    return run


@dataclasses.dataclass
class Task:
    """What `fit` needs to train and judge one model."""
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    rng: tf.random.Generator
    train_steps: Callable  # from compile_steps: (*chunk) -> (summed terms, finite)
    epoch_batches: Callable  # epoch -> tuple of index arrays, each [steps, ...]
    evaluate: Callable  # epoch -> dict of metrics; "score" is chosen on, higher is better
    describe: Callable  # (train means, metrics) -> the middle of the log line
    save: Callable  # path -> writes the weights file
    steps_per_call: int = 10
    warm_up: "Phase" = None  # run once before the first epoch of a new run, then evaluated and logged
    average: MovingAverage = None  # updated by train_steps; evaluated and saved in the weights' place
    picture: Callable = None  # epoch -> keeps a picture of the weights chosen on, once per evaluation


@dataclasses.dataclass
class Phase:
    """Training steps run once, with their own compiled steps and minibatches (such as M2's warm-up)."""
    name: str
    train_steps: Callable
    batches: tuple
    lr: float


def run_steps(train_steps, batches, steps_per_call, what, lr, last_good, bar=None):
    """Runs train_steps (from compile_steps) over the minibatches `batches` (index arrays [steps, ...]),
    steps_per_call a call, and returns the terms' means over the steps. A chunk that leaves any weight
    or term non-finite stops the run (UserError naming `what`, the rate lr and `last_good`) before
    anything is evaluated or saved."""
    steps = len(batches[0])
    totals = {}
    for s in range(0, steps, steps_per_call):
        sums, finite = train_steps(*[tf.constant(b[s: s + steps_per_call]) for b in batches])
        sums = {k: float(v) for k, v in sums.items()}
        if not (bool(finite) and all(math.isfinite(v) for v in sums.values())):
            raise UserError(f"{what}: the weights or the loss became non-finite (learning rate {lr:g}); "
                            f"stopped without evaluating or saving them; {last_good}")
        totals = {k: totals.get(k, 0.0) + v for k, v in sums.items()}
        if bar:
            done = min(s + steps_per_call, steps)
            bar.update(done, [("loss", totals["loss"] / done)])
    return {k: v / steps for k, v in totals.items()}


class RunFolder:
    """A training run's folder, locked for this process before anything is loaded; the folders of
    the run and of its weights file are checked for writing first, so that no epoch is lost to them.

    Two runs in one folder would overwrite each other's checkpoints, so a second is refused at once.
    The lock is an flock, released by the system when the process ends however it ends; the file
    keeps the holder's process id, so a run that was killed is named when the next one takes over.
    """

    def __init__(self, path, weights_path):
        check_writable(path)
        check_writable(os.path.dirname(os.path.abspath(weights_path)))
        self.path = path
        self._lock = open(os.path.join(path, "lock"), "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(f"{path}: another run is training in this folder")
        self._lock.seek(0)
        previous = self._lock.read().strip()
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        self.log_path = os.path.join(path, "train.log")
        if previous:
            self.log(f"took over the lock of process {previous}, which ended without releasing it")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.close()

    def log(self, line):
        """Prints a line and appends it to the run's log."""
        print(line, flush=True)
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def open_checkpoints(self, config, **trackables):
        """Restores the latest checkpoint of this folder (refusing one made with another config);
        adds the counters epoch, best_score and seconds to the trackables. Returns self."""
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best_score = tf.Variable(-np.inf, dtype=tf.float64)
        self.seconds = tf.Variable(0.0, dtype=tf.float64)
        self.ckpt_dir = os.path.join(self.path, "ckpt")
        checkpoint = tf.train.Checkpoint(epoch=self.epoch, best_score=self.best_score,
                                         seconds=self.seconds, **trackables)
        self.manager = tf.train.CheckpointManager(checkpoint, self.ckpt_dir, max_to_keep=2)
        config_path = os.path.join(self.ckpt_dir, "config.json")
        latest = self.manager.latest_checkpoint
        if latest and os.path.exists(config_path):
            saved = read_json(config_path)
            if saved != config:
                diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
                raise UserError(f"{self.ckpt_dir} holds a run with other settings ({', '.join(diff)}); "
                                "pass the same flags to resume, or a new --out to start afresh")
        write_json(config_path, config)
        if latest:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except Exception as e:
                raise UserError(f"{latest}: cannot resume from this checkpoint ({type(e).__name__}); "
                                "pass a new --out to start afresh")
        self.log(f"{'resumed ' + latest + ' at epoch ' + str(int(self.epoch)) if latest else 'new run'}: "
                 f"{' '.join(sys.argv)}")
        self.last_save = time.time()
        return self

    def checkpoint(self, interval_s):
        """Saves a checkpoint if interval_s seconds have passed since the last (0: now)."""
        if time.time() - self.last_save >= interval_s:
            self.manager.save()
            self.last_save = time.time()

    def last_good(self):
        latest = self.manager.latest_checkpoint
        return f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"


def fit(run, task, args, record):
    """Trains task to args.epochs epochs in run (a RunFolder with open checkpoints).

    Every args.eval_every epochs (and at the last): evaluate, log, and if the score is the best yet,
    write the weights to args.weights with a JSON record (record, the metrics, epochs and minutes)
    and a copy of the log beside them; then checkpoint. A chunk of steps that leaves any weight or
    term non-finite stops the run before anything is evaluated or saved.
    """
    writer = tf.summary.create_file_writer(os.path.join(run.path, "tb"))
    stem = os.path.splitext(args.weights)[0]
    average = task.average or MovingAverage([], 0.0)
    if task.warm_up and int(run.epoch) == 0:
        start = time.time()
        means = run_steps(task.warm_up.train_steps, task.warm_up.batches, task.steps_per_call, "the warm-up",
                          task.warm_up.lr, run.last_good())
        run.seconds.assign_add(time.time() - start)
        run.log(f"{task.warm_up.name} | {task.describe(means, task.evaluate(0))} | "
                f"{time.time() - start:5.1f} s, {float(run.seconds) / 60:6.1f} min")
        average.restart(task.model.trainable_variables)
    while int(run.epoch) < args.epochs:
        e = int(run.epoch) + 1
        start = time.time()
        lr = learning_rate(args.lr, args.epochs, args.lr_decay_epochs, e)
        task.optimizer.learning_rate.assign(lr)
        batches = task.epoch_batches(e)
        steps = len(batches[0])
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss"], verbose=1 if sys.stdout.isatty() else 0)
        means = run_steps(task.train_steps, batches, task.steps_per_call, f"epoch {e}", lr, run.last_good(), bar)
        run.seconds.assign_add(time.time() - start)
        run.epoch.assign(e)
        with writer.as_default(step=e):
            for k, v in means.items():
                tf.summary.scalar(f"train/{k}", v)
            tf.summary.scalar("train/learning_rate", lr)
        if e % args.eval_every and e != args.epochs:
            run.checkpoint(args.ckpt_minutes * 60)
            continue
        # With a moving average, the unaveraged weights are scored too, to show what the average adds.
        unaveraged = task.evaluate(e) if average.averages else None
        with average.applied(task.model.trainable_variables):
            metrics = task.evaluate(e)
            if task.picture:
                task.picture(e)
            is_best = metrics["score"] > float(run.best_score)
            if unaveraged:
                metrics.update({f"unaveraged_{k}": v for k, v in unaveraged.items() if k != "score"})
            with writer.as_default(step=e):
                for k, v in metrics.items():
                    tf.summary.scalar(f"eval/{k}", v)
            run.log(f"epoch {e:4d} | {task.describe(means, metrics)} | lr {lr:.1e} | "
                    f"{time.time() - start:5.1f} s/epoch, {float(run.seconds) / 60:6.1f} min{' | best' if is_best else ''}")
            if unaveraged:
                run.log(f"  unaveraged weights: {task.describe(means, unaveraged)}")
            if is_best:
                run.best_score.assign(metrics["score"])
                task.save(args.weights)
                write_json(stem + ".json", {
                    **record, "command": " ".join(["python", os.path.basename(sys.argv[0]), *sys.argv[1:]]),
                    "epochs": e, "train_minutes": round(float(run.seconds) / 60, 1),
                    **{k: round(v, 5) for k, v in metrics.items() if k != "score"}})
        run.checkpoint(0)
        copy_atomic(run.log_path, stem + ".log")
    writer.flush()
    minutes = round(float(run.seconds) / 60, 1)
    run.log(f"done: {int(run.epoch)} epochs in {minutes} min, best validation score "
            f"{float(run.best_score):.4f}, weights {args.weights}")
    if os.path.exists(stem + ".json"):
        # What the whole run cost, beside train_minutes (the minutes to the chosen weights).
        write_json(stem + ".json", {**read_json(stem + ".json"), "run_minutes": minutes, "epochs_run": int(run.epoch)})
    copy_atomic(run.log_path, stem + ".log")


def read_log(path):
    """The evaluation lines of a train.log as dicts: epoch, minutes (of training so far) and each
    'name value' field (a percentage as a fraction), e.g. 'test err', 'valid err', 'valid', 'test'."""
    rows = []
    with open(path) as f:
        for line in f:
            if not line.startswith("epoch"):
                continue
            fields = [part.strip() for part in line.split("|")]
            row = {"epoch": int(fields[0].split()[1]),
                   "minutes": float(re.search(r"([\d.]+) min", line).group(1))}
            for part in fields[1:]:
                match = re.fullmatch(r"([A-Za-z][A-Za-z(),]*(?: [a-z]+)?) +(-?[\d.]+)(%?)", part)
                if match and match.group(1).count("(") == match.group(1).count(")"):
                    row[match.group(1)] = float(match.group(2)) / (100 if match.group(3) else 1)
            rows.append(row)
    return rows


# Table 1 as a sweep of ordinary training runs: table1.py plans, launches and collects them.
ROOT = os.path.dirname(os.path.abspath(__file__))
WEIGHTS_M2 = os.path.join(ROOT, "weights", "M2")
SWEEP_OUTPUT = os.path.join(ROOT, "temp", "table1")  # each cell's console output
LABELS = (100, 600, 1000, 3000)
MODELS = ("m1m2", "m2")
# The paper's Table 1 and the best public version (PyTorch, one seed), for comparison only.
PAPER = {("m2", 100): "11.97 ± 1.71", ("m2", 600): "4.94 ± 0.13", ("m2", 1000): "3.60 ± 0.56",
         ("m2", 3000): "3.92 ± 0.63", ("m1m2", 100): "3.33 ± 0.14", ("m1m2", 600): "2.59 ± 0.05",
         ("m1m2", 1000): "2.40 ± 0.02", ("m1m2", 3000): "2.18 ± 0.04"}
PYTORCH = {("m2", 100): "7.15", ("m1m2", 100): "2.80", ("m1m2", 600): "2.35", ("m1m2", 1000): "2.45",
           ("m1m2", 3000): "2.44"}
BEGIN, END = "<!-- table1 -->", "<!-- /table1 -->"


def table1_cells(models, labels, seeds, recipe):
    """Table 1's cells, in order: (model, N, seed), each with the ordinary `train_M2.py -train`
    command that trains it (one thread) and the stem of its weights, JSON and log."""
    cells = []
    for model in models:
        for n in labels:
            for seed in seeds:
                suffix = recipe_suffix(model, recipe)
                command = (f"python train_M2.py -train --model {model} --labels {n} --seed {seed} "
                           f"--recipe {recipe} --threads 1")
                cells.append({"model": model, "labels": n, "seed": seed, "recipe": recipe, "command": command,
                              "stem": os.path.join(WEIGHTS_M2, f"{model}_labels{n}_seed{seed}{suffix}")})
    return cells


def cell_finished(cell):
    """A cell is finished when the log beside its weights ends its run ('done:')."""
    log = cell["stem"] + ".log"
    if not (os.path.exists(cell["stem"] + ".json") and os.path.exists(log)):
        return False
    with open(log) as f:
        return any(line.startswith("done:") for line in f)


def run_cells(cells, jobs):
    """Runs the unfinished cells, `jobs` at a time, each on one thread pinned to its own core
    (taskset, where there is one); a line per cell as it ends."""
    todo = [c for c in cells if not cell_finished(c)]
    print(f"{len(cells) - len(todo)} of {len(cells)} cells finished; running {len(todo)}, {jobs} at a time")
    running = {}  # slot -> (cell, process, start)
    while todo or running:
        for slot in [s for s in range(jobs) if s not in running][: len(todo)]:
            cell = todo.pop(0)
            pin = ["taskset", "-c", str(slot % os.cpu_count())] if shutil.which("taskset") else []
            os.makedirs(SWEEP_OUTPUT, exist_ok=True)
            with open(os.path.join(SWEEP_OUTPUT, os.path.basename(cell["stem"]) + ".out"), "a") as out:
                process = subprocess.Popen(pin + [sys.executable, *cell["command"].split()[1:]], cwd=ROOT,
                                           stdout=out, stderr=subprocess.STDOUT)
            running[slot] = (cell, process, time.time())
        time.sleep(5)
        for slot, (cell, process, start) in list(running.items()):
            if process.poll() is None:
                continue
            del running[slot]
            state = ("done" if process.returncode == 0 else
                     f"failed (exit {process.returncode}), see {SWEEP_OUTPUT}/{os.path.basename(cell['stem'])}.out")
            print(f"{cell['model']} N={cell['labels']} seed {cell['seed']}: {state} after "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)


def summarise(records):
    """Mean, standard deviation (over seeds, ddof 1) and count of test errors in %, and the mean
    minutes of a run (the whole run where it ended, else to its chosen weights)."""
    errors = 100 * np.array([r["test_error"] for r in records])
    std = float(np.std(errors, ddof=1)) if len(errors) > 1 else float("nan")
    minutes = [r.get("run_minutes", r["train_minutes"]) for r in records]  # a whole run where it ended
    return float(np.mean(errors)), std, len(errors), float(np.mean(minutes))


def table1_markdown(cells):
    """Markdown Table 1 from the JSON records of the cells that have one: a row per N, model and
    recipe that has results, a 'not yet run' row for an N and model with none."""
    lines = ["| N | model | here: test error % (seeds) | minutes a run | recipe | paper | best public (PyTorch) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in LABELS:
        for model in MODELS:
            name = "M1+M2" if model == "m1m2" else "M2"
            rows = []
            for recipe in sorted({c["recipe"] for c in cells}):
                planned = [c for c in cells if (c["model"], c["labels"], c["recipe"]) == (model, n, recipe)]
                group = [c for c in planned if os.path.exists(c["stem"] + ".json")]
                if not group:
                    continue
                mean, std, count, minutes = summarise([read_json(c["stem"] + ".json") for c in group])
                unfinished = sum(not cell_finished(c) for c in group)
                here = (f"{mean:.2f}{f' ± {std:.2f}' if count > 1 else ''} ({count} of {len(planned)} seeds"
                        f"{f', {unfinished} unfinished' if unfinished else ''})")
                rows.append([here, f"{minutes:.0f}", recipe])
            for row in rows or [["not yet run", "", ""]]:
                lines.append(f"| {n} | {name} | " + " | ".join(row) + f" | {PAPER[(model, n)]} | {PYTORCH.get((model, n), '')} |")
    return "\n".join(lines)


def write_between_markers(text, path):
    """Puts text between the BEGIN and END markers of the file at path (the README's Table 1)."""
    readme = open(path).read()
    if BEGIN not in readme or END not in readme:
        raise UserError(f"{path}: no {BEGIN} ... {END} markers to put the table between")
    head, rest = readme.split(BEGIN, 1)
    new = head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1]
    atomic_write(path, lambda tmp: open(tmp, "w").write(new))
