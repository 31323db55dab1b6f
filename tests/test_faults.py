"""Faults on real processes: kill -9 mid-run and resume, a second run in a busy folder, a learning
rate that breaks the weights. Each run is a few seconds on a --subset of MNIST, one thread."""
import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from files import read_jsonl

M1_FLAGS = ["train_M1.py", "-train", "--subset", "5000", "--hidden", "32", "32", "--batch-size", "10",
            "--epochs", "6", "--eval-every", "1", "--threads", "1"]
M2_FLAGS = ["train_M2.py", "-train", "--subset", "2100", "--labels", "100", "--hidden", "16", "--z-dim", "4",
            "--epochs", "6", "--eval-every", "1", "--threads", "1", "--ema", "0.9"]  # the average is resumed too


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


@pytest.mark.parametrize("flags, weights", [(M1_FLAGS, "m1.npz"), (M2_FLAGS, "m1m2_labels100_seed0.npz")])
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(flags, weights, tmp_path, start):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = start(flags, straight)
    victim = start(flags, killed)
    wait_for(killed / "train.log", "epoch    3 |")
    time.sleep(0.1)  # into epoch 4, or the writes after epoch 3
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rc, _, err = finish(start(flags, killed))
    assert rc == 0, err
    assert finish(reference)[0] == 0
    log = (killed / "train.log").read_text()
    assert f"took over the lock of process {victim.pid}" in log
    assert "resumed" in log
    a, b = checkpoint_tensors(str(straight)), checkpoint_tensors(str(killed))
    assert len(a) > 10 and a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    a, b = weight_arrays(straight / weights), weight_arrays(killed / weights)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # One metrics row per evaluated epoch, none twice, the same figures as the uninterrupted run's.
    a, b = ([{k: v for k, v in row.items() if k != "minutes"} for row in read_jsonl(str(run / "metrics.jsonl"))]
            for run in (straight, killed))
    assert [row["epoch"] for row in b] == [1, 2, 3, 4, 5, 6] and a == b
    assert not glob.glob(str(killed / "**" / ".tmp-*"), recursive=True)


def test_a_second_run_in_a_busy_folder_is_refused_at_once(tmp_path, start):
    start([f if f != "6" else "1000" for f in M1_FLAGS], tmp_path)
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
