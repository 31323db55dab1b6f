"""The one training loop of every model, and the run folder and checkpoints around it.

A script builds a `Task` (model, optimizer, random-number generator, a compiled chunk of training
steps, the epoch's minibatches, an evaluation) and hands it with the run's settings to `fit`, which
runs the epochs: the learning-rate schedule, the finite check after every chunk of steps, evaluation
every few epochs, the best-on-validation weights with their JSON record, log and metrics, TensorBoard
scalars and checkpoints. A resumed run repeats an uninterrupted one exactly: the epoch counter, best
score, training time, optimizer state and generator state are all in the checkpoint.
"""
import contextlib
import dataclasses
import fcntl
import math
import os
import sys
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from cli import UserError
from files import check_writable, copy_atomic, read_json, read_jsonl, write_json, write_jsonl
from recipes import SCHEDULE


def set_threads(threads):
    """TensorFlow's CPU threads (0: all)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


class MovingAverage(tf.Module):
    """An exponential moving average of variables (Polyak averaging), evaluated and saved in their
    place, updated once per chunk of k steps with momentum ** k: after every step it made an M1
    epoch 11.9-12.5 s against 9.7 s. With momentum 0 it keeps nothing and every method does nothing."""

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


def make_rng(seed, alg):
    """The run's generator (checkpointed with it); alg is the recipe's ('philox' or 'threefry')."""
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
    """A training run's folder: checkpoints, the log `train.log` and `metrics.jsonl` (one JSON row
    per evaluation, which the tables and figures read). The folders of the run and of its weights are
    checked for writing first, so that no epoch is lost to them, and the run folder is locked before
    anything is loaded: a second run there would overwrite the checkpoints, so it is refused at once.
    The lock is an flock, released by the system when the process ends however it ends; the file
    keeps the holder's process id, so a run that was killed is named when the next one takes over."""

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
        self._lock.truncate(0)
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        self.log_path = os.path.join(path, "train.log")
        self.metrics_path = os.path.join(path, "metrics.jsonl")
        if previous:
            self.log(f"took over the lock of process {previous}, which ended without releasing it")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._lock.truncate(0)
        self._lock.close()

    def log(self, line):
        """Prints a line and appends it to the run's log."""
        print(line, flush=True)
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def add_metrics(self, row):
        """Appends one evaluation's row to metrics.jsonl (rewritten atomically: never half a row)."""
        rows = read_jsonl(self.metrics_path) if os.path.exists(self.metrics_path) else []
        write_jsonl(self.metrics_path, rows + [row])

    def copy_beside(self, stem):
        """Copies the log and the metrics beside the weights: <stem>.log, <stem>.metrics.jsonl."""
        copy_atomic(self.log_path, stem + ".log")
        if os.path.exists(self.metrics_path):
            copy_atomic(self.metrics_path, stem + ".metrics.jsonl")

    def open_checkpoints(self, config, **trackables):
        """Restores the latest checkpoint of this folder, refusing one made with other settings than
        config's (its schedule, recipes.SCHEDULE, may change); adds the counters epoch, best_score and
        seconds to the trackables, and drops metrics rows that the checkpoint does not cover (written
        by a run killed before its next checkpoint, which the resumed run writes again). Returns self."""
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best_score = tf.Variable(-np.inf, dtype=tf.float64)
        self.seconds = tf.Variable(0.0, dtype=tf.float64)
        self.ckpt_dir = os.path.join(self.path, "ckpt")
        checkpoint = tf.train.Checkpoint(epoch=self.epoch, best_score=self.best_score,
                                         seconds=self.seconds, **trackables)
        self.manager = tf.train.CheckpointManager(checkpoint, self.ckpt_dir, max_to_keep=2)
        config_path = os.path.join(self.ckpt_dir, "config.json")
        latest = self.manager.latest_checkpoint
        guarded = {k: v for k, v in config.items() if k not in SCHEDULE}
        if latest and os.path.exists(config_path):
            saved = read_json(config_path)
            if saved != guarded:
                diff = sorted(k for k in set(saved) | set(guarded) if saved.get(k) != guarded.get(k))
                raise UserError(f"{self.ckpt_dir} holds a run with other settings ({', '.join(diff)}); "
                                "pass the same flags to resume, or a new --out to start afresh")
        write_json(config_path, guarded)
        if latest:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except Exception as e:
                raise UserError(f"{latest}: cannot resume from this checkpoint ({type(e).__name__}); "
                                "pass a new --out to start afresh")
        if os.path.exists(self.metrics_path):
            write_jsonl(self.metrics_path, [r for r in read_jsonl(self.metrics_path)
                                            if latest and r["epoch"] <= int(self.epoch)])
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
        """Names the last good checkpoint, for an error message."""
        latest = self.manager.latest_checkpoint
        return f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"


def fit(run, task, config, weights, ckpt_minutes):
    """Trains task to config["epochs"] epochs in run (a RunFolder with open checkpoints).

    Every config["eval_every"] epochs (and at the last): evaluate, log, add a metrics row, and if the
    score is the best yet, write the weights to `weights` with their JSON record (config and the
    results, so the two cannot drift) and copies of the log and metrics beside them; then checkpoint.
    Between evaluations, a checkpoint every ckpt_minutes. A chunk of steps that leaves any weight
    or term non-finite stops the run before anything is evaluated or saved."""
    writer = tf.summary.create_file_writer(os.path.join(run.path, "tb"))
    stem = os.path.splitext(weights)[0]
    average = task.average or MovingAverage([], 0.0)
    if task.warm_up and int(run.epoch) == 0:
        warm_up(run, task, average)
    while int(run.epoch) < config["epochs"]:
        e = int(run.epoch) + 1
        start = time.time()
        lr = learning_rate(config["lr"], config["epochs"], config["lr_decay_epochs"], e)
        means = train_epoch(run, task, e, lr)
        with writer.as_default(step=e):
            for k, v in {**means, "learning_rate": lr}.items():
                tf.summary.scalar(f"train/{k}", v)
        if e % config["eval_every"] and e != config["epochs"]:
            run.checkpoint(ckpt_minutes * 60)
            continue
        # With a moving average, the unaveraged weights are scored too, to show what the average adds.
        unaveraged = task.evaluate(e) if average.averages else None
        with average.applied(task.model.trainable_variables):
            metrics, is_best = evaluate(run, task, e, means, lr, start, unaveraged)
            with writer.as_default(step=e):
                for k, v in metrics.items():
                    tf.summary.scalar(f"eval/{k}", v)
            if is_best:
                run.best_score.assign(metrics["score"])
                task.save(weights)
                write_json(stem + ".json", {
                    **config, "command": " ".join(["python", os.path.basename(sys.argv[0]), *sys.argv[1:]]),
                    "chosen_epoch": e, "train_minutes": round(float(run.seconds) / 60, 1),
                    **{k: round(v, 5) for k, v in metrics.items() if k != "score"}})
        run.checkpoint(0)
        run.copy_beside(stem)
    writer.flush()
    minutes = round(float(run.seconds) / 60, 1)
    run.log(f"done: {int(run.epoch)} epochs in {minutes} min, best validation score "
            f"{float(run.best_score):.4f}, weights {weights}")
    if os.path.exists(stem + ".json"):
        # What the whole run cost, beside train_minutes (the minutes to the chosen weights).
        write_json(stem + ".json", {**read_json(stem + ".json"), "run_minutes": minutes, "epochs_run": int(run.epoch)})
    run.copy_beside(stem)


def warm_up(run, task, average):
    """Runs the task's warm-up phase, logs it as epoch 0 and starts the weight average after it."""
    start = time.time()
    phase = task.warm_up
    means = run_steps(phase.train_steps, phase.batches, task.steps_per_call, "the warm-up", phase.lr, run.last_good())
    run.seconds.assign_add(time.time() - start)
    metrics = task.evaluate(0)
    run.log(f"{phase.name} | {task.describe(means, metrics)} | "
            f"{time.time() - start:5.1f} s, {float(run.seconds) / 60:6.1f} min")
    run.add_metrics(metrics_row(0, run, phase.lr, means, metrics))
    average.restart(task.model.trainable_variables)


def train_epoch(run, task, epoch, lr):
    """One epoch of training steps at rate lr; counts its time and the epoch in run. Returns the
    training terms' means."""
    start = time.time()
    task.optimizer.learning_rate.assign(lr)
    batches = task.epoch_batches(epoch)
    bar = keras.utils.Progbar(len(batches[0]), stateful_metrics=["loss"], verbose=1 if sys.stdout.isatty() else 0)
    means = run_steps(task.train_steps, batches, task.steps_per_call, f"epoch {epoch}", lr, run.last_good(), bar)
    run.seconds.assign_add(time.time() - start)
    run.epoch.assign(epoch)
    return means


def evaluate(run, task, epoch, means, lr, start, unaveraged=None):
    """Scores the weights in place, with the unaveraged weights' metrics (if given) beside them as
    unaveraged_*; logs them and adds their metrics row. Returns the metrics and whether their score
    is the best yet."""
    metrics = task.evaluate(epoch)
    if task.picture:
        task.picture(epoch)
    is_best = metrics["score"] > float(run.best_score)
    if unaveraged:
        metrics.update({f"unaveraged_{k}": v for k, v in unaveraged.items() if k != "score"})
    run.log(f"epoch {epoch:4d} | {task.describe(means, metrics)} | lr {lr:.1e} | "
            f"{time.time() - start:5.1f} s/epoch, {float(run.seconds) / 60:6.1f} min{' | best' if is_best else ''}")
    if unaveraged:
        run.log(f"  unaveraged weights: {task.describe(means, unaveraged)}")
    run.add_metrics({**metrics_row(epoch, run, lr, means, metrics), "best": is_best})
    return metrics, is_best


def metrics_row(epoch, run, lr, means, metrics):
    """One row of metrics.jsonl: the epoch, minutes of training so far, the rate, the training
    terms' means (train_*) and the evaluation's metrics (the score, a sign-flipped copy, left out)."""
    return {"epoch": epoch, "minutes": round(float(run.seconds) / 60, 3), "lr": lr,
            **{f"train_{k}": v for k, v in means.items()},
            **{k: v for k, v in metrics.items() if k != "score"}}
