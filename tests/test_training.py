"""The training loop on a tiny real model with a scripted validation score: the weights chosen on
validation, the record (settings and results, one object), the metrics rows, the checkpoint guard, and a
damaged checkpoint skipped for the one before."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ssdgm import UserError
from ssdgm.files import read_json, read_jsonl
from ssdgm.models import m1
from ssdgm.models.weights import save_weights
from ssdgm.training import loop, settings
from ssdgm.training.run_folder import RunFolder


def tiny_task(scores, snapshots):
    """An M1 of 8 units trained for real on 40 random images; its validation score is scripted
    (epoch -> score), and the weights at each evaluation are kept in snapshots."""
    keras.utils.set_random_seed(0)
    model = m1.M1(hidden=[8], z_dim=2)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    rng = loop.make_rng(0, "philox")
    x = tf.constant(np.random.default_rng(0).random((40, 784), dtype=np.float32))
    step = m1.make_train_step(model, optimizer, x, rng, 40)

    def evaluate(epoch):
        snapshots[epoch] = [v.numpy() for v in model.weights]
        return {"score": scores[epoch], "valid_bound": scores[epoch]}

    return loop.Task(model, optimizer, rng, loop.compile_steps(step, model.trainable_variables),
                         lambda epoch: (np.arange(40, dtype=np.int32).reshape(4, 10),), evaluate,
                         lambda train, ev: f"valid {ev['valid_bound']}",
                         lambda path: save_weights(path, model, model.get_config()))


def config(epochs):
    return {"model": "tiny", "recipe": "test", "hidden": [8], "lr": 1e-2, "epochs": epochs, "lr_decay_epochs": 0,
            "eval_every": 1, "seed": 0}


def train(folder, weights, epochs, scores, snapshots=None):
    """tiny_task trained to `epochs` in the run folder, resuming what is there: the task."""
    task = tiny_task(scores, {} if snapshots is None else snapshots)
    with RunFolder(str(folder), str(weights)) as run:
        run.open_checkpoints(config(epochs), model=task.model, optimizer=task.optimizer, rng=task.rng)
        loop.fit(run, task, config(epochs), str(weights), ckpt_minutes=60)
    return task


def test_the_weights_chosen_are_the_best_on_validation_not_the_last(tmp_path):
    snapshots = {}
    weights = str(tmp_path / "tiny.npz")
    train(tmp_path / "run", weights, 3, {1: -30.0, 2: -10.0, 3: -20.0}, snapshots)
    with np.load(weights) as f:
        saved = [f[f"w{i:03d}"] for i in range(len(snapshots[2]))]
    assert all(np.array_equal(s, w) for s, w in zip(saved, snapshots[2]))
    assert not all(np.array_equal(s, w) for s, w in zip(saved, snapshots[3]))
    record = read_json(str(tmp_path / "tiny.json"))
    assert record == {**config(3), "command": record["command"], "chosen_epoch": 2, "valid_bound": -10.0,
                      "train_minutes": record["train_minutes"], "run_minutes": record["run_minutes"], "epochs_run": 3,
                      "cpu": loop.cpu_description()}
    rows = read_jsonl(str(tmp_path / "run" / "metrics.jsonl"))
    assert [(r["epoch"], r["best"], r["valid_bound"]) for r in rows] == [(1, True, -30.0), (2, True, -10.0),
                                                                        (3, False, -20.0)]
    assert {"train_loss", "train_bound", "lr", "minutes"} <= set(rows[0])
    assert read_jsonl(str(tmp_path / "tiny.metrics.jsonl")) == rows
    guarded = read_json(str(tmp_path / "run" / "ckpt" / "config.json"))
    assert guarded == {k: v for k, v in config(3).items() if k not in settings.SCHEDULE}


def test_a_resume_may_extend_the_schedule_but_not_change_what_is_trained(tmp_path):
    scores = {e: -float(e) for e in range(1, 5)}
    weights = str(tmp_path / "tiny.npz")
    for epochs in (1, 2):
        train(tmp_path / "run", weights, epochs, scores)
    assert [r["epoch"] for r in read_jsonl(str(tmp_path / "run" / "metrics.jsonl"))] == [1, 2]
    task = tiny_task(scores, {})
    with RunFolder(str(tmp_path / "run"), weights) as run:
        with pytest.raises(UserError, match=r"other settings \(lr\)"):
            run.open_checkpoints({**config(3), "lr": 1e-3}, model=task.model, optimizer=task.optimizer, rng=task.rng)


def test_rows_of_epochs_after_the_last_checkpoint_are_dropped_on_resume(tmp_path):
    weights = str(tmp_path / "tiny.npz")
    task = train(tmp_path / "run", weights, 1, {1: -1.0, 2: -2.0})
    with RunFolder(str(tmp_path / "run"), weights) as run:
        run.add_metrics({"epoch": 2, "minutes": 0.0})  # as a run killed after logging epoch 2, before its checkpoint
    with RunFolder(str(tmp_path / "run"), weights) as run:
        run.open_checkpoints(config(2), model=task.model, optimizer=task.optimizer, rng=task.rng)
        assert [r["epoch"] for r in read_jsonl(run.metrics_path)] == [1]
    assert os.path.exists(str(tmp_path / "tiny.metrics.jsonl"))


def test_a_damaged_newest_checkpoint_is_skipped_for_the_one_before(tmp_path):
    scores = {e: -float(e) for e in range(1, 4)}

    def weights_after(folder, epochs):
        task = train(tmp_path / folder, tmp_path / folder / "tiny.npz", epochs, scores)
        return [v.numpy() for v in task.model.weights]

    straight = weights_after("straight", 3)
    for epochs in (1, 2):
        weights_after("damaged", epochs)
    ckpt = str(tmp_path / "damaged" / "ckpt")
    newest = tf.train.latest_checkpoint(ckpt)
    data = tf.io.gfile.glob(newest + ".data-*")[0]
    os.truncate(data, os.path.getsize(data) // 2)
    resumed = weights_after("damaged", 3)
    log = (tmp_path / "damaged" / "train.log").read_text()
    skipped = log.index(f"skipped checkpoint {newest}: it does not restore")
    assert log[skipped:].splitlines()[1].startswith(f"resumed {ckpt}/ckpt-1 at epoch 1: ")
    assert all(np.array_equal(a, b) for a, b in zip(straight, resumed))
    for path in tf.io.gfile.glob(ckpt + "/ckpt-*.data-*"):
        os.truncate(path, 10)
    with pytest.raises(UserError, match=r"no checkpoint restores \(see .*train.log\); pass a new --out"):
        weights_after("damaged", 4)
