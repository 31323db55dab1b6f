"""A training run's folder: its lock, log, metrics rows and checkpoints, and how it stops on a signal.

A run can be stopped at any moment and the same command continues it. SIGTERM (a cluster's time limit
or preemption) and SIGINT (Ctrl-C) ask it to stop: the loop finishes its compiled chunk of steps,
writes a checkpoint of the exact place (epoch and step within it) and ends with one line and the
conventional status, 128 + the signal. A second signal ends the process at once. A write that fails
(a full disk, a folder made read-only) ends the run with one line naming the path and the last good
checkpoint; nothing is left half-written.
"""
import contextlib
import fcntl
import glob
import os
import re
import shutil
import signal
import sys
import time

import numpy as np

from ssdgm.files import check_writable, copy_atomic, metrics_path, read_json, read_jsonl, write_json, write_jsonl
from ssdgm.tf import tf
from ssdgm.training.cli import Stopped, UserError
from ssdgm.training.settings import SCHEDULE

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunFolder:
    """A training run's folder: checkpoints, the log `train.log` and `metrics.jsonl` (one JSON row
    per evaluation, which the tables and figures read). The folders of the run and of its weights are
    checked for writing first, so that no epoch is lost to them, and the run folder is locked before
    anything is loaded: a second run there would overwrite the checkpoints, so it is refused at once.
    The lock is an flock, released by the system when the process ends however it ends; the file
    keeps the holder's process id, so a run that was killed is named when the next one takes over.
    Within `with`, SIGTERM and SIGINT set `stop_signal` for the loop to act on (see `stop_here`)."""

    def __init__(self, path, weights_path):
        check_writable(path, "--out")
        check_writable(os.path.dirname(os.path.abspath(weights_path)), "--weights")
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
        self.stop_signal = None
        self.manager = None
        if previous:
            self.log(f"took over the lock of process {previous}, which ended without releasing it")
            self._remove_leftovers(weights_path)

    def _remove_leftovers(self, weights_path):
        """Removes the temporary files of atomic writes that a killed run left (never the files they were
        to replace): every one in the run folder, which the lock keeps to this run, and beside the
        weights those of this run's own files."""
        stem = os.path.basename(os.path.splitext(weights_path)[0])
        beside = os.path.dirname(os.path.abspath(weights_path))
        for leftover in glob.glob(os.path.join(glob.escape(self.path), "**", ".tmp-*"), recursive=True) + [
                path for ending in (".npz", ".json", ".log", ".metrics.jsonl")
                for path in glob.glob(os.path.join(glob.escape(beside), ".tmp-*" + glob.escape(stem + ending)))]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)

    def __enter__(self):
        self._handlers = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._handlers.items():
            signal.signal(s, handler)
        self._lock.truncate(0)
        self._lock.close()

    def _on_signal(self, signum, frame):
        if self.stop_signal is not None:  # the second: at once, as if no handler were set
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.stop_signal = signum

    @contextlib.contextmanager
    def writing(self, path):
        """Turns a failed write to path (a full disk, ...) into one line naming it and the last good
        checkpoint; what was written before stays as it was (every write is atomic)."""
        try:
            yield
        except (OSError, tf.errors.OpError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "message", None) or str(e) or type(e).__name__
            reason = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", reason.splitlines()[0])
            raise UserError(f"{path}: cannot write ({reason}); stopped; {self.last_good()}, "
                            "and the weights and records are as they were")

    def log(self, line, echo=True):
        """Prints a line (if echo) and appends it to the run's log."""
        if echo:
            print(line, flush=True)
        with self.writing(self.log_path), open(self.log_path, "a") as f:
            f.write(line + "\n")

    def add_metrics(self, row):
        """Appends one evaluation's row to metrics.jsonl (rewritten atomically: never half a row)."""
        rows = read_jsonl(self.metrics_path) if os.path.exists(self.metrics_path) else []
        with self.writing(self.metrics_path):
            write_jsonl(self.metrics_path, rows + [row])

    def copy_beside(self, stem):
        """Copies the log and the metrics beside the weights: <stem>.log, <stem>.metrics.jsonl."""
        with self.writing(stem + ".log"):
            copy_atomic(self.log_path, stem + ".log")
            if os.path.exists(self.metrics_path):
                copy_atomic(self.metrics_path, metrics_path(stem))

    def open_checkpoints(self, config, **trackables):
        """Restores the newest checkpoint of this folder that restores (naming any newer one skipped,
        and why), refusing one made with other settings than config's (its schedule, recipes.SCHEDULE,
        may change). Adds the run's place to the trackables: epochs done, steps done into the next
        epoch (or the warm-up) with their terms' partial sums, whether the warm-up is done, the best
        score and the seconds of training. Drops metrics rows the checkpoint does not cover (written by
        a run killed before its next checkpoint, which the resumed run writes again). Returns self."""
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.partial_sums = tf.Variable(np.zeros(0), shape=tf.TensorShape(None), dtype=tf.float64)
        self.warmed = tf.Variable(False)
        self.best_score = tf.Variable(-np.inf, dtype=tf.float64)
        self.seconds = tf.Variable(0.0, dtype=tf.float64)
        self.ckpt_dir = os.path.join(self.path, "ckpt")
        checkpoint = tf.train.Checkpoint(epoch=self.epoch, step=self.step, partial_sums=self.partial_sums,
                                         warmed=self.warmed, best_score=self.best_score, seconds=self.seconds,
                                         **trackables)
        self.manager = tf.train.CheckpointManager(checkpoint, self.ckpt_dir, max_to_keep=2)
        self._checkpoint = checkpoint
        config_path = os.path.join(self.ckpt_dir, "config.json")
        guarded = {k: v for k, v in config.items() if k not in SCHEDULE}
        if self.manager.checkpoints and os.path.exists(config_path):
            saved = read_json(config_path)
            if saved != guarded:
                diff = sorted(k for k in set(saved) | set(guarded) if saved.get(k) != guarded.get(k))
                raise UserError(f"{self.ckpt_dir} holds a run with other settings ({', '.join(diff)}); "
                                "pass the same flags to resume, or a new --out to start afresh")
        with self.writing(config_path):
            write_json(config_path, guarded)
        restored = self._restore_newest(checkpoint)
        if os.path.exists(self.metrics_path):
            with self.writing(self.metrics_path):
                write_jsonl(self.metrics_path, [r for r in read_jsonl(self.metrics_path)
                                                if restored and r["epoch"] <= int(self.epoch)])
        place = f" at epoch {int(self.epoch)}" + (f", step {int(self.step)}" if int(self.step) else "")
        self.log(f"{'resumed ' + restored + place if restored else 'new run'}: {' '.join(sys.argv)}")
        self.last_save = time.time()
        return self

    def _restore_newest(self, checkpoint):
        """The newest checkpoint path that restores (None if there is none), logging each one skipped."""
        for path in reversed(self.manager.checkpoints):
            try:
                checkpoint.restore(path).assert_existing_objects_matched()
                return path
            except Exception as e:
                reason = (str(e).strip().splitlines() or [""])[0][:200]
                self.log(f"skipped checkpoint {path}: it does not restore ({type(e).__name__}: {reason})")
        if self.manager.checkpoints:
            raise UserError(f"{self.ckpt_dir}: no checkpoint restores (see {self.log_path}); "
                            "pass a new --out to start afresh")
        return None

    def checkpoint(self, interval_s):
        """Saves a checkpoint if interval_s seconds have passed since the last (0: now). A save that
        fails leaves none of its files behind."""
        if time.time() - self.last_save < interval_s:
            return
        number = int(self._checkpoint.save_counter) + 1  # the number the manager gives it
        with self.writing(self.ckpt_dir):
            try:
                self.manager.save(checkpoint_number=number)
            except BaseException:
                prefix = os.path.join(self.ckpt_dir, f"ckpt-{number}")
                for part in glob.glob(prefix + ".*") + glob.glob(prefix + "_temp*"):
                    if os.path.isdir(part):
                        shutil.rmtree(part, ignore_errors=True)
                    else:
                        os.remove(part)
                raise
        self.last_save = time.time()

    def stop_here(self, what, step, steps, sums):
        """If a signal asked the run to stop: records the place reached (`step` of `steps` into `what`,
        with the partial sums of the terms), writes a checkpoint and raises Stopped."""
        if self.stop_signal is None:
            return
        self.step.assign(step)
        self.partial_sums.assign(np.array([sums[k] for k in sorted(sums)], np.float64))
        self.checkpoint(0)
        line = (f"{signal.Signals(self.stop_signal).name} at {what}, step {step} of {steps}: checkpoint "
                f"{self.manager.latest_checkpoint} written; the same command resumes the run there")
        self.log(f"stopped by {line}", echo=False)
        raise Stopped(line, 128 + self.stop_signal)

    def last_good(self):
        """Names the last good checkpoint, for an error message."""
        latest = self.manager.latest_checkpoint if self.manager else None
        return f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
