"""Shipped results safe from any command, and misuse refused with one line: where trial runs write,
what --ship and table1.py --report accept, and weights of the wrong kind, broken or not a file."""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import run_analogy
import table1
import train_M1
import train_M2
from ssdgm import UserError
from ssdgm.models.trained import load, load_classifier
from ssdgm.models.weights import read_weights
from ssdgm.tools import report
from ssdgm.training import loop

WEIGHTS = Path(ROOT) / "weights"
SHIPPED_M2 = str(WEIGHTS / "M2" / "m1m2_labels100_seed0.npz")


def tree_digest(folder):
    """SHA-256 of every file under folder, by path."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.mark.parametrize("script, argv", [
    (train_M2, ["-train", "--subset", "1000", "--epochs", "1"]),
    (train_M2, ["-train"]),
    (train_M2, ["-train", "--model", "adgm", "--threads", "2"]),
    (train_M1, ["-train", "--subset", "1000", "--epochs", "1"]),
    (train_M1, ["-train"]),
])
def test_a_training_run_writes_its_weights_in_its_run_folder_unless_shipped(script, argv):
    args = script.parse_args(argv)
    assert os.path.dirname(args.weights) == args.out and f"{os.sep}temp{os.sep}" in args.out


def test_ship_writes_the_name_evaluation_reads_and_only_for_the_recipe_as_it_is():
    shipped = train_M2.parse_args(["--model", "m2", "--labels", "600", "--seed", "1"]).weights
    assert train_M2.parse_args(["-train", "--model", "m2", "--labels", "600", "--seed", "1", "--ship",
                                "--threads", "1", "--eval-every", "3"]).weights == shipped
    assert train_M1.parse_args(["-train", "--ship"]).weights == train_M1.parse_args([]).weights
    for script, argv, message in [
        (train_M2, ["-train", "--ship", "--epochs", "3"], "--ship: --epochs departs from the recipe"),
        (train_M2, ["-train", "--ship", "--subset", "1000"], "--ship: --subset departs from the recipe"),
        (train_M2, ["-train", "--ship", "--m1-weights", "weights/M1/m1_first.npz"], "--ship: --m1-weights departs"),
        (train_M1, ["-train", "--ship", "--prior-sd", "1"], "--ship: --prior-sd departs from the recipe"),
        (train_M2, ["-train", "--ship", "--weights", "x.npz"], "leave out --weights"),
        (train_M2, ["--ship"], "--ship is for training: add -train"),
        (train_M2, ["-train", "--subset", "1000", "--weights", SHIPPED_M2], "is among the shipped weights"),
        (train_M1, ["-train", "--epochs", "1", "--weights", str(WEIGHTS / "M1" / "m1.npz")], "is among the shipped"),
    ]:
        with pytest.raises(UserError, match=re.escape(message)):
            script.parse_args(argv)


def test_a_quick_run_leaves_every_shipped_file_as_it_was(tmp_path):
    before = tree_digest(WEIGHTS)
    train_M2.main(["-train", "--subset", "200", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "m2")])
    assert (tmp_path / "m2" / "m1m2_labels100_seed0.npz").exists()
    assert tree_digest(WEIGHTS) == before


def test_a_finished_run_resumed_with_other_weights_is_refused(tmp_path):
    flags = ["-train", "--model", "m2", "--subset", "200", "--hidden", "8", "--epochs", "1", "--warmup-steps", "0",
             "--out", str(tmp_path / "run")]
    train_M2.main(flags)
    with pytest.raises(UserError, match="holds a finished run"):
        train_M2.main(flags + ["--weights", str(tmp_path / "other.npz")])
    assert not (tmp_path / "other.npz").exists()


def test_table1_report_writes_only_from_the_whole_plan():
    readme, figure = (Path(ROOT) / "README.md").read_bytes(), (Path(ROOT) / "docs" / "table1.png").read_bytes()
    for argv, message in [(["--report", "--seeds", "0"], "leave out --seeds"),
                          (["--report", "--models", "m2"], "leave out --models"),
                          (["--jobs", "2", "--report", "--labels", "100"], "leave out --labels"),
                          ([], "nothing to do"),
                          (["--print-commands", "--models", "adgm", "--labels", "600"], "no cell of Table 1")]:
        with pytest.raises(UserError, match=message):
            table1.main(argv)
    assert (Path(ROOT) / "README.md").read_bytes() == readme
    assert (Path(ROOT) / "docs" / "table1.png").read_bytes() == figure


def test_table1_prints_each_command_once(capsys):
    table1.main(["--print-commands", "--models", "m2", "--labels", "600", "--seeds", "1", "1"])
    assert capsys.readouterr().out.splitlines() == [
        "python train_M2.py -train --model m2 --labels 600 --seed 1 --recipe fast --threads 1 --ship"]


def test_a_record_or_metrics_row_without_its_figures_is_one_line(tmp_path):
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(UserError, match="not a run's record"):
        table1.read_record(str(tmp_path / "r.json"))
    (tmp_path / "m.jsonl").write_text(json.dumps({"epoch": 1, "minutes": 1.0}) + "\n")
    with pytest.raises(UserError, match="row 1 has no test_error"):
        report.read_metrics(str(tmp_path / "m.jsonl"))  # the figures draw test_error


def rewritten(path, tmp_path, change):
    """A copy of the weights file at path with change(arrays) applied to its arrays."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    out = str(tmp_path / "changed.npz")
    np.savez(out, **arrays)
    return out


def test_weights_of_another_kind_broken_or_not_a_file_are_refused(tmp_path):
    def nan(arrays):
        arrays["w000"] = arrays["w000"].copy()
        arrays["w000"].flat[0] = np.nan
    cases = [
        (["--model", "m2", "--weights", SHIPPED_M2], "are M1+M2 (--model m1m2), not M2 on pixels"),
        (["--weights", str(WEIGHTS / "M2" / "m2_labels100_seed0.npz")], "are M2 on pixels (--model m2), not M1+M2"),
        (["--weights", str(WEIGHTS / "M1" / "m1.npz")], "are M1 (train_M1.py), not M1+M2"),
        (["--model", "adgm", "--weights", str(WEIGHTS / "ADGM" / "sdgm_labels100_seed0.npz")], "are SDGM"),
        (["--weights", rewritten(SHIPPED_M2, tmp_path, nan)], "NaN or infinite values"),
        (["--labels", "\u00b2"], "--labels must be a number or 'all'"),
        (["--labels", "\u0661\u0660\u0660"], "--labels must be a number or 'all'"),
        (["--weights", str(tmp_path)], "not a regular file"),
    ]
    for argv, message in cases:
        with pytest.raises(UserError, match=re.escape(message)):
            train_M2.main(argv)
    no_units = rewritten(SHIPPED_M2, tmp_path, lambda arrays: arrays.pop("extra_kept_units"))
    for call in (lambda: train_M2.main(["--weights", no_units]), lambda: load(no_units)):
        with pytest.raises(UserError, match="without the M1 they read"):
            call()
    with pytest.raises(UserError, match=re.escape("are M1 (train_M1.py), not M1+M2")):
        load_classifier(str(WEIGHTS / "M1" / "m1.npz"))
    assert read_weights(SHIPPED_M2, "")[0]["likelihood"] == "gaussian"  # the copies above changed nothing


def test_a_fifo_as_weights_is_refused_at_once(tmp_path):
    fifo = tmp_path / "w.npz"
    os.mkfifo(fifo)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "train_M2.py", "--weights", str(fifo)], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2 and "not a regular file" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_batch_has_empty_probabilities_and_analogies_want_digits():
    classifier = load_classifier()
    assert classifier.probabilities(np.zeros((0, 784))).shape == (0, 10)
    images = np.zeros((2, 784), np.float32)
    with pytest.raises(ValueError, match="0..9"):
        classifier.analogies(images, np.array([3, 10]))


def test_the_scripts_name_the_shipped_m1_and_every_model_before_tensorflow_loads():
    from ssdgm.models import m1, registry
    assert train_M2.parse_args([]).m1_weights == m1.DEFAULT_WEIGHTS
    assert set(registry.semi_supervised()) == {"m1m2", "m2", "adgm", "sdgm"}


@pytest.mark.parametrize("script", ["train_M1.py", "train_M2.py", "run_analogy.py"])
def test_help_comes_before_tensorflow_loads(script):
    """--help parses the flags only: a fresh interpreter that never imports TensorFlow."""
    code = (f"import runpy, sys; sys.argv = [{script!r}, '--help']\n"
            f"try:\n    runpy.run_path({script!r}, run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
            "print('tensorflow' in sys.modules, code)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("False 0") and "usage:" in result.stdout, result.stdout + result.stderr


def test_more_misuse_is_one_line(tmp_path, capsys):
    """A folder as run_analogy's --out, M1 weights for the analogies, an unwritable folder for M1's
    reconstructions, a corrupt record beside a run's weights (before any training), train_M1's
    recipes, and the seeds table1.py's report has no record for."""
    for call, message in [
        (lambda: run_analogy.main(["--out", str(tmp_path) + os.sep]), "a folder; name the analogy figure's file"),
        (lambda: run_analogy.main(["--weights", str(WEIGHTS / "M1" / "m1.npz"), "--out", str(tmp_path / "a.png")]),
         "are M1 (train_M1.py), not M1+M2 (--model m1m2) or M2 on pixels"),
        (lambda: train_M1.main(["--out", "/proc/nope/run"]), "cannot write here (No such file or directory); choose another with --out"),
    ]:
        with pytest.raises(UserError, match=re.escape(message)):
            call()
    out = tmp_path / "run"
    out.mkdir()
    (out / "m2_labels100_seed0.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        train_M2.main(["-train", "--model", "m2", "--subset", "200", "--hidden", "8", "--epochs", "1", "--out", str(out)])
    assert not (out / "m2_labels100_seed0.npz").exists() and "epoch    1" not in (out / "train.log").read_text()
    with pytest.raises(SystemExit):
        train_M1.parse_args(["--recipe", "styles"])
    assert "invalid choice: 'styles'" in capsys.readouterr().err
    lines = table1.missing(table1.cells(["m1m2"], [100], [0, 99], "fast"))
    assert lines == [f"m1m2 N=100 fast: no record for seed 99 ({WEIGHTS / 'M2'})"]


def test_a_run_without_a_terminal_prints_its_progress_between_evaluations(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0)
    train_M2.main(["-train", "--model", "m2", "--subset", "200", "--hidden", "8", "--epochs", "1",
                   "--warmup-steps", "0", "--out", str(tmp_path / "run")])
    assert "  epoch 1: step 10 of 100, loss" in capsys.readouterr().out
