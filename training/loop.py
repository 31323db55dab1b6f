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
import math
import os
import sys
import time
from typing import Callable

from ssdgm import UserError
from ssdgm.files import read_json, write_json
from ssdgm.tf import keras, tf

PROGRESS_SECONDS = 120  # without a terminal's progress bar, a line this often between evaluations


def set_threads(threads):
    """TensorFlow's CPU threads (0: all)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def cpu_description():
    """The CPU's model name and which of its wide vector and matrix extensions are present."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    return f"{model}, {os.cpu_count()} cores; {' '.join(f for f in wanted if f in flags) or 'no AVX2'}"


class MovingAverage(tf.Module):
    """An exponential moving average of variables (Polyak averaging), evaluated and saved in their
    place, updated once per chunk of k steps with momentum ** k, which costs less than an update after
    every step (docs/speed.md). With momentum 0 it keeps nothing and every method does nothing."""

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


def learning_rate(lr, epochs, decay_epochs, epoch, step_every=0, step_factor=1.0):
    """The rate for epoch (from 1): lr, then linear towards 0 over the last decay_epochs epochs,
    reaching lr / decay_epochs in the last one; with step_every, lr is first multiplied by step_factor
    after every step_every epochs (the ADGM authors' 0.75 every 200)."""
    if step_every:
        lr *= step_factor ** ((epoch - 1) // step_every)
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


def run_steps(run, train_steps, batches, steps_per_call, what, lr, bar=None):
    """Runs train_steps (from compile_steps) over the minibatches `batches` (index arrays [steps, ...]),
    steps_per_call a call, from the step and partial sums that `run` holds (0 unless resumed inside
    `what`), and returns the terms' means over the steps. After each call: a chunk that leaves any
    weight or term non-finite stops the run (UserError naming `what`, the rate lr and the last good
    checkpoint) before anything is evaluated or saved; a signal stops it with its place saved."""
    steps, start = len(batches[0]), time.time()
    done, pending, totals = int(run.step), list(run.partial_sums.numpy()), {}
    said = start
    while done < steps:
        sums, finite = train_steps(*[tf.constant(b[done: done + steps_per_call]) for b in batches])
        sums = {k: float(v) for k, v in sums.items()}
        if not (bool(finite) and all(math.isfinite(v) for v in sums.values())):
            raise UserError(f"{what}: the weights or the loss became non-finite (learning rate {lr:g}); "
                            f"stopped without evaluating or saving them; {run.last_good()}")
        if not totals:
            totals = dict(zip(sorted(sums), pending)) if pending else dict.fromkeys(sums, 0.0)
        totals = {k: totals[k] + v for k, v in sums.items()}
        done = min(done + steps_per_call, steps)
        if bar:
            bar.update(done, [("loss", totals["loss"] / done)])
        if not sys.stdout.isatty() and time.time() - said > PROGRESS_SECONDS and done < steps:
            said = time.time()
            print(f"  {what}: step {done} of {steps}, loss {totals['loss'] / done:.2f}, "
                  f"{(said - start) / 60:.1f} min", flush=True)
        if done < steps and run.stop_signal is not None:
            run.seconds.assign_add(time.time() - start)
            run.stop_here(what, done, steps, totals)
    run.seconds.assign_add(time.time() - start)
    run.step.assign(0)
    run.partial_sums.assign([])
    return {k: v / steps for k, v in totals.items()}


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
    cpu = cpu_description()
    run.log(f"CPU: {cpu}")
    if os.path.exists(stem + ".json"):
        read_json(stem + ".json")  # a record this run will update must be readable before it trains
    if int(run.epoch) >= config["epochs"] and not os.path.exists(weights):
        raise UserError(f"{run.path} holds a finished run ({int(run.epoch)} epochs), whose weights were written "
                        f"where it ran; {weights} would not be written: pass a new --out to train afresh")
    if task.warm_up and not bool(run.warmed):
        warm_up(run, task, average)
    while int(run.epoch) < config["epochs"]:
        e = int(run.epoch) + 1
        start = time.time()
        lr = learning_rate(config["lr"], config["epochs"], config["lr_decay_epochs"], e,
                           config.get("lr_step_every", 0), config.get("lr_step_factor", 1.0))
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
                with run.writing(weights):
                    task.save(weights)
                    write_json(stem + ".json", {
                        **config, "command": " ".join(["python", os.path.basename(sys.argv[0]), *sys.argv[1:]]),
                        "chosen_epoch": e, "train_minutes": round(float(run.seconds) / 60, 1), "cpu": cpu,
                        **{k: round(v, 5) for k, v in metrics.items() if k != "score"}})
        run.checkpoint(0)
        run.copy_beside(stem)
    writer.flush()
    minutes = round(float(run.seconds) / 60, 1)
    run.log(f"done: {int(run.epoch)} epochs in {minutes} min, best validation score "
            f"{float(run.best_score):.4f}, weights {weights}")
    if os.path.exists(stem + ".json"):
        # What the whole run cost, beside train_minutes (the minutes to the chosen weights).
        with run.writing(stem + ".json"):
            write_json(stem + ".json", {**read_json(stem + ".json"), "run_minutes": minutes, "epochs_run": int(run.epoch)})
    run.copy_beside(stem)


def warm_up(run, task, average):
    """Runs the task's warm-up phase, logs it as epoch 0 and starts the weight average after it."""
    start = time.time()
    phase = task.warm_up
    means = run_steps(run, phase.train_steps, phase.batches, task.steps_per_call, "the warm-up", phase.lr)
    run.warmed.assign(True)
    metrics = task.evaluate(0)
    run.log(f"{phase.name} | {task.describe(means, metrics)} | "
            f"{time.time() - start:5.1f} s, {float(run.seconds) / 60:6.1f} min")
    run.add_metrics(metrics_row(0, run, phase.lr, means, metrics))
    average.restart(task.model.trainable_variables)


def train_epoch(run, task, epoch, lr):
    """One epoch of training steps at rate lr (the rest of it, if resumed inside it); counts the
    epoch in run. Returns the training terms' means."""
    task.optimizer.learning_rate.assign(lr)
    batches = task.epoch_batches(epoch)
    bar = keras.utils.Progbar(len(batches[0]), stateful_metrics=["loss"], verbose=1 if sys.stdout.isatty() else 0)
    means = run_steps(run, task.train_steps, batches, task.steps_per_call, f"epoch {epoch}", lr, bar)
    run.epoch.assign(epoch)
    return means


def evaluate(run, task, epoch, means, lr, start, unaveraged=None):
    """Scores the weights in place, with the unaveraged weights' metrics (if given) beside them as
    unaveraged_*; logs them and adds their metrics row. Returns the metrics and whether their score
    is the best yet."""
    metrics = task.evaluate(epoch)
    if task.picture:
        with run.writing(run.path):
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
