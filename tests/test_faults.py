"""Faults on real processes: kill -9 and SIGTERM mid-run and resume, SIGINT's stop, a full disk, a second
run in a busy folder, a learning rate that breaks the weights. Each run is a few seconds on a --subset of
MNIST, one thread. (A damaged checkpoint is in test_training, in-process.)"""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from ssdgm.files import read_jsonl

M1_FLAGS = ["train_M1.py", "-train", "--subset", "5000", "--hidden", "32", "32", "--batch-size", "10",
            "--epochs", "4", "--eval-every", "1", "--threads", "1"]
M2_FLAGS = ["train_M2.py", "-train", "--subset", "2100", "--labels", "100", "--hidden", "16", "--z-dim", "4",
            "--epochs", "4", "--eval-every", "1", "--threads", "1", "--ema", "0.9"]  # the average is resumed too


def with_epochs(flags, epochs):
    at = flags.index("--epochs") + 1
    return flags[:at] + [str(epochs)] + flags[at + 1:]


@pytest.fixture
def start():
    """start(args, out) -> a training process; any still running when the test ends, passed or
    failed, is killed."""
    started = []

    def spawn(args, out):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        started.append(subprocess.Popen([sys.executable, *args, "--out", str(out)], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        return started[-1]
    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(path, text, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path).read():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def checkpoint_tensors(run_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if any(part in name for part in ("model", "optimizer", "rng", "epoch", "average"))}


def weight_arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def stop_mid_epoch(process, run_dir, signum, after_epoch):
    """Sends signum to a training process a moment after it logs an epoch; returns when it was sent."""
    wait_for(run_dir / "train.log", f"epoch {after_epoch:4d} |")
    time.sleep(0.1)  # into the next epoch, or the writes after this one
    process.send_signal(signum)
    return time.time()


def assert_stopped_with_one_line(process, signum, sent, run_dir):
    """One line, the conventional status, within 30 s, and a checkpoint at the place it names."""
    rc, _, err = finish(process)
    assert rc == 128 + signum and time.time() - sent < 30
    name = signal.Signals(signum).name
    line = err.strip()
    assert "\n" not in line and line.startswith(f"stopped by {name} at epoch "), err
    epoch, step = map(int, re.search(r" at epoch (\d+), step (\d+) of \d+: checkpoint ", line).groups())
    assert line.endswith("written; the same command resumes the run there")
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "ckpt")))
    assert (reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"),
            reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == (epoch - 1, step)


@pytest.mark.parametrize("flags, weights, signum", [(M1_FLAGS, "m1.npz", signal.SIGKILL),
                                                    (M2_FLAGS, "m1m2_labels100_seed0.npz", signal.SIGTERM)],
                         ids=["M1-SIGKILL", "M2-SIGTERM"])
def test_a_run_stopped_mid_epoch_resumes_to_the_same_weights(flags, weights, signum, tmp_path, start):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    reference = start(flags, straight)
    victim = start(flags, stopped)
    sent = stop_mid_epoch(victim, stopped, signum, after_epoch=2)
    if signum == signal.SIGKILL:
        finish(victim)
    else:
        assert_stopped_with_one_line(victim, signum, sent, stopped)
    rc, _, err = finish(start(flags, stopped))
    assert rc == 0, err
    assert finish(reference)[0] == 0
    log = (stopped / "train.log").read_text()
    if signum == signal.SIGKILL:
        assert f"took over the lock of process {victim.pid}" in log
    assert "resumed" in log
    a, b = checkpoint_tensors(str(straight)), checkpoint_tensors(str(stopped))
    assert len(a) > 10 and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    a, b = weight_arrays(straight / weights), weight_arrays(stopped / weights)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # One metrics row per evaluated epoch, none twice, the same figures as the uninterrupted run's.
    a, b = ([{k: v for k, v in row.items() if k != "minutes"} for row in read_jsonl(str(run / "metrics.jsonl"))]
            for run in (straight, stopped))
    assert [row["epoch"] for row in b] == [1, 2, 3, 4] and a == b
    assert not glob.glob(str(stopped / "**" / ".tmp-*"), recursive=True)


def test_ctrl_c_stops_a_run_mid_epoch_with_one_line_and_a_checkpoint_where_it_stopped(tmp_path, start):
    run = start(M1_FLAGS, tmp_path)  # it resumes as after SIGTERM above: the same path from here
    assert_stopped_with_one_line(run, signal.SIGINT, stop_mid_epoch(run, tmp_path, signal.SIGINT, 1), tmp_path)


@pytest.fixture
def full_disk(tmp_path):
    """A 100 kB filesystem (tmpfs, which needs root): room for a tiny run's files, not its checkpoint."""
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(folder)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_ends_the_run_with_one_line_and_nothing_half_written(full_disk, start):
    rc, _, err = finish(start(M2_FLAGS, full_disk / "run"))
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {full_disk / 'run' / 'ckpt'}: cannot write (") and "No space left on device" in err
    assert "no checkpoint was written yet, and the weights and records are as they were" in err
    assert sorted(os.listdir(full_disk / "run" / "ckpt")) == ["config.json"]
    assert not glob.glob(str(full_disk / "**" / ".tmp-*"), recursive=True)


def test_a_second_run_in_a_busy_folder_is_refused_at_once(tmp_path, start):
    start(with_epochs(M1_FLAGS, 1000), tmp_path)
    wait_for(tmp_path / "train.log", "new run")
    began = time.time()
    rc, out, err = finish(start(M1_FLAGS, tmp_path))
    assert rc == 2 and err.strip() == f"error: {tmp_path}: another run is training in this folder"
    assert out == "" and time.time() - began < 60  # refused before loading anything


def test_weights_broken_by_the_learning_rate_stop_the_run_with_nothing_non_finite_written(tmp_path, start):
    rc, _, err = finish(start(M2_FLAGS + ["--lr", "1e30"], tmp_path))
    assert rc == 2 and "Traceback" not in err
    assert err.strip() == ("error: epoch 1: the weights or the loss became non-finite (learning rate "
                           "1e+30); stopped without evaluating or saving them; no checkpoint was written yet")
    assert not glob.glob(str(tmp_path / "*.npz")) and tf.train.latest_checkpoint(str(tmp_path / "ckpt")) is None
