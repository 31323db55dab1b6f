"""The scripts' real main() on a few hundred images: training, resume, evaluation, and the CLI error paths."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, sharing

import run_analogy
import table1
import train_M1
import train_M2
from ssdgm.files import atomic_write, read_json
from ssdgm.models import m1
from ssdgm.models.m1 import M1
from ssdgm.models.weights import save_weights
from ssdgm.tools import benchmark, report
from ssdgm.training import settings
from ssdgm.training.cli import UserError, run_cli
from ssdgm.training.figures import read_frames
from ssdgm.training.run_folder import RunFolder

SHARES_M1_RUN = sharing("m1_run")


@pytest.fixture(scope="session")
def m1_run(tmp_path_factory):
    """Two epochs of train_M1.main on 300 images, the second after a resume."""
    out = tmp_path_factory.mktemp("m1") / "run"
    flags = ["-train", "--subset", "300", "--eval-every", "1", "--hidden", "64", "64", "--batch-size", "10", "--lr", "1e-3",
             "--out", str(out), "--weights", str(out.parent / "m1.npz")]
    train_M1.main(flags + ["--epochs", "1"])
    train_M1.main(flags + ["--epochs", "2"])
    return out, flags


@SHARES_M1_RUN
def test_m1_trains_resumes_and_writes_everything(m1_run):
    out, _ = m1_run
    log = (out / "train.log").read_text().splitlines()
    assert log[0].startswith("new run")
    assert any(line.startswith("resumed") and "at epoch 1" in line for line in log)
    epochs = [line for line in log if line.startswith("epoch")]
    assert [line.split("|")[0].split()[1] for line in epochs] == ["1", "2"]
    assert (out.parent / "m1.npz").exists() and (out.parent / "m1.json").exists()
    assert (out / "M1_training.gif").exists()
    epochs, pictures = read_frames(str(out / "frames.npz"))
    assert epochs.tolist() == [1, 2] and pictures.dtype == np.uint8 and pictures.shape[0] == 2
    assert tf.train.latest_checkpoint(str(out / "ckpt")).endswith("ckpt-2")


@SHARES_M1_RUN
def test_m1_resumed_run_equals_an_uninterrupted_one(m1_run, tmp_path):
    out, flags = m1_run
    straight = tmp_path / "straight"
    flags = [str(straight) if f == str(out) else str(tmp_path / "w.npz") if f.endswith("m1.npz") else f
             for f in flags]
    train_M1.main(flags + ["--epochs", "2"])
    resumed = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(out / "ckpt")))
    direct = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(straight / "ckpt")))
    names = [n for n in resumed.get_variable_to_shape_map() if "model" in n or "optimizer" in n]
    assert len(names) > 20
    for name in names:
        np.testing.assert_array_equal(resumed.get_tensor(name), direct.get_tensor(name), err_msg=name)


def test_a_run_with_a_moving_average_chooses_and_saves_the_average(tmp_path, capsys):
    out = tmp_path / "run"
    train_M1.main(["-train", "--subset", "300", "--eval-every", "1", "--hidden", "64", "64", "--batch-size", "10",
                   "--lr", "1e-3", "--epochs", "2", "--ema", "0.99", "--out", str(out)])
    record = read_json(str(out / "m1.json"))
    assert record["ema"] == 0.99
    assert abs(record["test_bound"] - record["unaveraged_test_bound"]) > 1.0  # 60 steps: far from the last
    log = (out / "train.log").read_text()
    assert log.count("  unaveraged weights: ") == 2
    # The file holds the average at the chosen epoch (its checkpoint's), not the weights trained to.
    chosen = str(out / "ckpt" / f"ckpt-{record['chosen_epoch']}")
    with np.load(out / "m1.npz") as saved:
        weights = [saved[f"w{i:03d}"] for i in range(len(saved.files) - 1)]
    reader = tf.train.load_checkpoint(chosen)
    averages = [reader.get_tensor(f"average/averages/{i}/.ATTRIBUTES/VARIABLE_VALUE") for i in range(len(weights))]
    model = M1(hidden=(64, 64))
    tf.train.Checkpoint(model=model).restore(chosen).expect_partial()
    trained = [v.numpy() for v in model.weights]
    assert len(weights) == 12 and all(np.array_equal(w, a) for w, a in zip(weights, averages))
    assert not any(np.array_equal(w, t) for w, t in zip(weights, trained))
    capsys.readouterr()
    train_M1.main(["--subset", "300", "--out", str(out), "--weights", str(out / "m1.npz")])
    printed = float(capsys.readouterr().out.split("test bound ")[1].split()[0])
    assert printed == pytest.approx(record["test_bound"], abs=0.006)


@SHARES_M1_RUN
def test_m1_evaluation_prints_bound_and_active_units(m1_run, capsys):
    out, _ = m1_run
    train_M1.main(["--subset", "300", "--out", str(out), "--weights", str(out.parent / "m1.npz")])
    text = capsys.readouterr().out
    assert "test bound" in text and "latent units active" in text
    assert (out.parent / "M1_reconstructions.png").exists()


@SHARES_M1_RUN
def test_m1_stops_on_a_non_finite_loss_naming_the_last_good_checkpoint(m1_run, monkeypatch):
    out, flags = m1_run
    before = tf.train.latest_checkpoint(str(out / "ckpt"))
    weights = (out.parent / "m1.npz").read_bytes()

    def nan_loss(model, x, eps, n_train, prior_sd):
        loss = tf.add_n([tf.reduce_sum(v) for v in model.trainable_variables]) * np.nan
        return loss, {"loss": loss}
    monkeypatch.setattr(m1, "loss_fn", nan_loss)
    with pytest.raises(UserError, match=f"epoch 3: the weights or the loss became non-finite .*"
                                        f"the last good checkpoint is {before}$"):
        train_M1.main(flags + ["--epochs", "3"])
    assert tf.train.latest_checkpoint(str(out / "ckpt")) == before
    assert (out.parent / "m1.npz").read_bytes() == weights


@SHARES_M1_RUN
def test_m1_refuses_to_resume_with_other_settings(m1_run):
    out, flags = m1_run
    with pytest.raises(UserError, match="other settings .*hidden"):
        train_M1.main([f if f != "64" else "32" for f in flags] + ["--epochs", "3"])


@pytest.fixture(scope="session")
def m2_run(m1_run):
    out = m1_run[0].parent
    m1_weights = str(out / "m1.npz")
    flags = ["--subset", "500", "--labels", "100", "--m1-weights", m1_weights,
             "--out", str(out / "m2run"), "--weights", str(out / "m2.npz")]
    train_M2.main(["-train", "--epochs", "2", "--eval-every", "1"] + flags)
    return out, flags


@SHARES_M1_RUN
def test_m2_trains_on_m1_and_evaluates_deterministically(m2_run, capsys):
    out, flags = m2_run
    log = (out / "m2run" / "train.log").read_text()
    assert "100 labelled, 400 unlabelled, 100 minibatches of 1 + 4; beta = 0.5" in log
    assert "valid err" in log and (out / "m2.log").exists() and (out / "m2.json").exists()
    rows = report.read_metrics(str(out / "m2run" / "metrics.jsonl"))
    assert [r["epoch"] for r in rows] == [1, 2] and report.read_metrics(str(out / "m2.metrics.jsonl")) == rows
    assert all(0 <= r["valid_entropy"] <= np.log(10) + 1e-3 and 0 <= r["valid_generative_error"] <= 1 for r in rows)
    capsys.readouterr()
    train_M2.main(flags)
    first = capsys.readouterr().out
    train_M2.main(flags)
    assert "validation error" in first and capsys.readouterr().out == first


@SHARES_M1_RUN
def test_m2_refuses_another_m1_and_finds_its_own_beside_it(m2_run, tmp_path, capsys):
    out, flags = m2_run
    other = M1(hidden=(64, 64))
    save_weights(str(tmp_path / "other.npz"), other, other.get_config())
    at = flags.index("--m1-weights") + 1
    flags = flags[:at] + [str(tmp_path / "other.npz")] + flags[at + 1:]
    with pytest.raises(UserError, match="not the M1 these M2 weights were trained on"):
        train_M2.main(flags)
    train_M2.main(flags[:at] + [str(out / "m1.npz")] + flags[at + 1:])
    expected = capsys.readouterr().out
    (tmp_path / "own.npz").write_bytes((out / "m1.npz").read_bytes())
    train_M2.main(flags)  # other.npz is not its M1, own.npz beside it is
    assert capsys.readouterr().out == expected


def test_fully_labelled_pixel_m2_is_chosen_on_the_validation_bound(tmp_path):
    flags = ["-train", "--model", "m2", "--labels", "all", "--subset", "200", "--hidden", "32",
             "--z-dim", "4", "--batches", "4", "--lr", "3e-3", "--epochs", "3", "--eval-every", "1",
             "--out", str(tmp_path / "run"), "--weights", str(tmp_path / "m2.npz")]
    train_M2.main(flags)
    bounds = [float(line.split("valid L(x,y)")[1].split("|")[0])
              for line in (tmp_path / "run" / "train.log").read_text().splitlines() if line.startswith("epoch")]
    saved = read_json(str(tmp_path / "m2.json"))
    assert len(bounds) == 3 and saved["selected_on"] == "validation bound"
    assert saved["valid_labelled_bound"] == pytest.approx(max(bounds), abs=0.01)
    assert saved["chosen_epoch"] == 1 + bounds.index(max(bounds))


def test_a_second_run_in_the_same_folder_is_refused(tmp_path):
    weights = str(tmp_path / "w.npz")
    with RunFolder(str(tmp_path), weights):
        with pytest.raises(UserError, match="another run is training in this folder"):
            RunFolder(str(tmp_path), weights)
    with RunFolder(str(tmp_path), weights):
        pass


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"old")

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError("killed")
    with pytest.raises(OSError):
        atomic_write(str(path), broken)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["w.npz"]
    umask = os.umask(0o022)
    try:
        atomic_write(str(path), lambda tmp: open(tmp, "wb").close())
    finally:
        os.umask(umask)
    assert path.read_bytes() == b"" and os.stat(path).st_mode & 0o777 == 0o644


def test_a_run_given_its_own_folder_writes_its_weights_there(tmp_path):
    shipped = {p: os.path.getmtime(p) for p in map(str, (Path(ROOT) / "weights").rglob("*"))}
    train_M1.main(["-train", "--subset", "200", "--hidden", "16", "16", "--batch-size", "50", "--epochs", "1",
                   "--out", str(tmp_path / "m1")])
    assert (tmp_path / "m1" / "m1.npz").exists() and (tmp_path / "m1" / "m1.json").exists()
    train_M2.main(["-train", "--subset", "200", "--labels", "100", "--hidden", "8", "--epochs", "1",
                   "--out", str(tmp_path / "m2")])
    assert (tmp_path / "m2" / "m1m2_labels100_seed0.npz").exists()
    assert {p: os.path.getmtime(p) for p in shipped} == shipped


def run_script(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)


ERRORS = [
    (["train_M1.py", "--epochs", "0"], "argument --epochs: must be an integer of at least 1"),
    (["train_M1.py", "-train", "--lr", "inf"], "argument --lr: must be a finite number above 0"),
    (["train_M1.py", "-train", "--prior-sd", "0"], "argument --prior-sd: must be a finite number above 0"),
    (["train_M2.py", "-train", "--lr", "nan"], "argument --lr: must be a finite number above 0"),
    (["train_M2.py", "-train", "--seed", "-1"], "argument --seed: must be an integer in [0, 4294967295]"),
    (["train_M1.py", "-train", "--seed", "4294967296"], "argument --seed: must be an integer in [0, 4294967295]"),
    (["run_analogy.py", "--seed", "-1"], "argument --seed: must be an integer in [0, 4294967295]"),
    (["train_M2.py", "-train", "--out", "/proc/nope"], "/proc/nope: cannot write here"),
    (["train_M1.py", "-train", "--weights", "/proc/nope/m1.npz", "--out", "/tmp"], "/proc/nope: cannot write here"),
    (["run_analogy.py", "--out", "/proc/nope/a.png"], "/proc/nope: cannot write here"),
    (["train_M1.py", "-train", "--epochs", "5", "--lr-decay-epochs", "6"], "--lr-decay-epochs must be at most --epochs"),
    (["train_M1.py", "--bogus"], "unrecognized arguments: --bogus"),
    (["train_M1.py", "--weights", "absent.npz"], "no weights; run `python train_M1.py -train`"),
    (["train_M1.py", "--gif", "absent.npz"], "absent.npz: no frames; a training run keeps one at every evaluation"),
    (["train_M2.py", "-train", "--labels", "15"], "labels must be a positive multiple of 10"),
    (["train_M2.py", "--labels", "ten"], "--labels must be a number or 'all'"),
    (["train_M2.py", "--weights", "absent.npz"], "no weights; run `python train_M2.py -train"),
    (["train_M2.py", "-train", "--batches", "200"], "--batches 200 exceeds the 100 labelled images"),
    (["table1.py", "--jobs", "-1"], "argument --jobs: must be an integer of at least 0"),
    (["table1.py", "--seeds", "x"], "argument --seeds: must be an integer in [0, 4294967295]"),
    (["tools/report.py", "--bogus"], "unrecognized arguments: --bogus"),
    (["tools/report.py", "--convert", "absent.log"], "absent.log: No such file or directory"),
    (["tools/benchmark.py", "--rounds", "0"], "argument --rounds: must be an integer of at least 1"),
    (["train_M2.py", "--epochs", "5"], "--epochs is a training setting: add -train"),
    (["train_M1.py", "--prior-sd", "0.5"], "--prior-sd is a training setting: add -train"),
    (["train_M1.py", "-train", "--gif"], "--gif only draws a GIF from a frames file; leave out -train"),
    (["train_M2.py", "--model", "m2", "--m1-weights", "weights/M1/m1.npz"], "--m1-weights is for a model that reads M1's features"),
    (["train_M2.py", "-train", "--model", "m2", "--labels", "all", "--warmup-steps", "5"],
     "--warmup-steps: with every label known there is no unlabelled part"),
    (["run_analogy.py", "--rows", "0"], "argument --rows: must be an integer of at least 1"),
]


SCRIPTS = {"train_M1.py": train_M1, "train_M2.py": train_M2, "run_analogy.py": run_analogy, "table1.py": table1,
           "tools/report.py": report, "tools/benchmark.py": benchmark}


@pytest.mark.parametrize("args, message", ERRORS)
def test_cli_errors_are_one_line_with_nonzero_exit(args, message, capsys, monkeypatch):
    """Each script's main() under the scripts' own error path, in this process: a fresh interpreter
    for each would spend its time importing TensorFlow (the next test runs a few that way)."""
    monkeypatch.chdir(ROOT)
    script, *argv = args
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: SCRIPTS[script].main(argv))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and message in lines[0], lines


FROM_THE_SHELL = [error for error in ERRORS if " ".join(error[0]) in (
    "train_M1.py --epochs 0", "train_M2.py --weights absent.npz", "run_analogy.py --out /proc/nope/a.png")]


@pytest.mark.parametrize("args, message", FROM_THE_SHELL, ids=[args[0] for args, _ in FROM_THE_SHELL])
def test_each_users_script_prints_one_line_and_exits_nonzero_from_the_shell(args, message):
    """The three commands users type, as a shell runs them: TensorFlow's start-up notices stay off stderr."""
    result = run_script(*args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr


def test_corrupt_data_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"\x00" * 1000)
    result = run_script("train_M1.py", "-train", "--data", str(bad), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and str(bad) in result.stderr


def test_m1_default_recipe_is_the_shipped_m1s_and_the_authors_one_flag_away():
    settings = ("batch_size", "lr", "epochs", "lr_decay_epochs", "ema", "prior_sd", "hidden", "z_dim", "init")
    shipped = read_json(os.path.join(ROOT, "weights", "M1", "m1.json"))
    fast = train_M1.parse_args([]).settings
    assert [fast[k] for k in settings] == [shipped[k] for k in settings]
    authors = train_M1.parse_args(["--recipe", "authors"]).settings
    assert [authors[k] for k in settings[:6]] == [1000, 3e-4, 3000, 0, 0.0, 1.0]
    given = train_M1.parse_args(["-train", "--ema", "0", "--prior-sd", "1"]).settings  # a flag given wins
    assert (given["ema"], given["prior_sd"], given["batch_size"]) == (0.0, 1.0, fast["batch_size"])


def test_pixel_m2_recipes_warm_up_only_in_the_fast_one():
    fast = train_M2.parse_args(["--model", "m2", "--labels", "100"]).settings
    authors = train_M2.parse_args(["--model", "m2", "--labels", "100", "--recipe", "authors"]).settings
    stacked = train_M2.parse_args([]).settings
    assert (fast["warmup_steps"], fast["lr"], fast["epochs"], fast["hidden"]) == (2000, 3e-3, 120, [500])
    assert (authors["warmup_steps"], authors["lr"], authors["epochs"]) == (0, 3e-4, 3000)
    assert (stacked["warmup_steps"], stacked["hidden"], stacked["batches"]) == (0, [300], 100)
    past_100 = train_M2.parse_args(["--labels", "600"]).settings
    assert (past_100["hidden"], past_100["batches"]) == ([300], 200)
    assert train_M2.parse_args(["--labels", "600", "--recipe", "authors"]).settings["hidden"] == [500]
    alphas = [train_M2.parse_args(flags).settings["alpha"] for flags in (
        ["--labels", "3000"], ["--labels", "3000", "--recipe", "authors"], ["--labels", "1000"],
        ["-train", "--labels", "3000", "--alpha", "0.2"])]
    assert alphas == [0.5, 0.1, 0.1, 0.2]  # the fast recipe's own at N=3000; the authors' and a flag win
    schedules = [(c["epochs"], c["lr_decay_epochs"]) for c in (train_M2.parse_args(flags).settings for flags in (
        ["--model", "m2", "--labels", "1000"], ["--model", "m2", "--labels", "600"],
        ["--model", "m2", "--labels", "1000", "--recipe", "authors"],
        ["-train", "--model", "m2", "--labels", "1000", "--epochs", "20"]))]
    assert schedules == [(180, 60), (120, 40), (3000, 0), (20, 20)]  # M2 alone's longer schedule at N=1000 only
    analogy = train_M2.parse_args(["--model", "m2", "--labels", "all", "--recipe", "authors"]).settings
    assert (analogy["hidden"], analogy["warmup_steps"], analogy["labels"]) == ([500, 500], 0, 50000)


def test_pixel_m2_has_the_papers_one_hidden_layer_and_warms_up_once_not_again_on_resume(tmp_path):
    flags = ["-train", "--model", "m2", "--labels", "100", "--subset", "400", "--z-dim", "4",
             "--warmup-steps", "20", "--out", str(tmp_path)]
    train_M2.main(flags + ["--epochs", "1"])
    train_M2.main(flags + ["--epochs", "2"])
    record = read_json(str(tmp_path / "m2_labels100_seed0.json"))
    assert record["hidden"] == [500] and record["recipe"] == "fast" and record["lr"] == 3e-3
    assert record["warmup_steps"] == 20 and record["warmup_lr"] == settings.BY_NAME["warmup_lr"].default
    assert record["epochs_run"] == 2 and record["run_minutes"] >= record["train_minutes"]
    log = (tmp_path / "train.log").read_text()
    assert log.count("warm-up: 20 full-batch steps on the labelled part") == 1 and "resumed" in log


def test_the_shipped_frames_make_a_gif_of_at_least_ten_frames(tmp_path):
    import imageio.v2 as imageio
    shipped = Path(ROOT) / "docs" / "M1_training_frames.npz"
    (tmp_path / "frames.npz").write_bytes(shipped.read_bytes())
    train_M1.main(["--gif", str(tmp_path / "frames.npz")])
    frames = imageio.mimread(str(tmp_path / "M1_training.gif"))
    assert len(frames) >= 10
    assert (Path(ROOT) / "docs" / "M1_training.gif").stat().st_size <= 2 * 2 ** 20
