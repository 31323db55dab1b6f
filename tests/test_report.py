"""report.py: the one-time conversion of logs into metrics rows, and the figures drawn from the manifest."""
import glob
import os
import subprocess
import sys
import types

import matplotlib.axes
import pytest
from conftest import ROOT

from ssdgm.files import metrics_path, read_json
from ssdgm.tools import report

SHIPPED_LOGS = sorted(glob.glob(os.path.join(ROOT, "weights", "*", "*.log"))
                      + glob.glob(os.path.join(ROOT, "docs", "experiments", "M*", "*.log")))


def test_every_record_has_metrics_and_the_tree_ships_no_trial_records():
    assert len(SHIPPED_LOGS) > 40
    for record in glob.glob(os.path.join(ROOT, "weights", "*", "*.json")):
        stem = record[:-len(".json")]
        assert os.path.exists(stem + ".npz") and os.path.exists(metrics_path(stem)), stem


# How far a logged figure may be from the row's: half the log's last printed digit.
LOG_PRECISION = {"minutes": 0.051, "valid_error": 5.1e-5, "test_error": 5.1e-5, "valid_generative_error": 5.1e-5,
                 "valid_entropy": 5.1e-4, "train_log_qy": 5.1e-5, "active_units": 0}


def agrees_with_log(row, logged):
    """Whether a metrics row holds every figure of its log line, to the log's precision."""
    for key, value in logged.items():
        key_tail = key.removeprefix("unaveraged_")
        if key in ("epoch", "best"):
            if row[key] != value:
                return False
        elif key == "lr":
            if row[key] != pytest.approx(value, rel=0.051):
                return False
        elif row[key] != pytest.approx(value, abs=LOG_PRECISION.get(key_tail, 0.0051)):
            return False
    return True


@pytest.mark.parametrize("log", SHIPPED_LOGS, ids=os.path.basename)
def test_the_shipped_metrics_hold_their_logs_figures_and_their_records(log):
    """Rows converted from a log of the older format (python report.py --convert) are its figures;
    rows a run wrote itself hold the same figures at full precision."""
    stem = log[:-len(".log")]
    rows = report.read_metrics(metrics_path(stem), needs=("epoch",))
    logged = report.metrics_from_log(log)
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in logged]
    assert all(agrees_with_log(row, line) for row, line in zip(rows, logged))
    record = read_json(stem + ".json")
    chosen = [r for r in rows if r["epoch"] == record["chosen_epoch"]]
    assert len(chosen) == 1
    for key in ("test_error", "valid_error"):
        if key in record:
            assert chosen[0][key] == pytest.approx(record[key], abs=5e-5)  # the log's 0.01%
    for key in ("test_bound", "valid_bound"):
        if key in record:
            assert chosen[0][key] == pytest.approx(record[key], abs=5e-3)  # the log's 0.01 nat


def test_a_log_line_of_each_model_becomes_one_row():
    m2 = ("epoch   10 | L(x,y)  -29.35 | U(x)  -28.08 (rec  -27.97, KL  0.01) | log q(y|x) -1.6548 | "
          "valid L(x,y)  -27.54 | valid err 31.92% | test err 33.38% | entropy 2.158 | gen err 36.10% | "
          "lr 1.0e-03 |   4.7 s/epoch,    1.0 min | best")
    assert report.log_fields(m2.split(" | ", 1)[1]) == {
        "train_labelled_bound": -29.35, "train_unlabelled_bound": -28.08, "train_reconstruction": -27.97,
        "train_kl": 0.01, "train_log_qy": -1.6548, "valid_labelled_bound": -27.54, "valid_error": 0.3192,
        "test_error": 0.3338, "valid_entropy": 2.158, "valid_generative_error": 0.361, "lr": 1e-3}
    m1 = "train bound  -86.21 (rec  -60.32, KL  25.90) | valid   -88.56 | test   -87.88 | active 20"
    assert report.log_fields(m1) == {"train_bound": -86.21, "train_reconstruction": -60.32, "train_kl": 25.9,
                                     "valid_bound": -88.56, "test_bound": -87.88, "active_units": 20}


def test_the_figures_draw_every_run_of_the_manifest(tmp_path, capsys):
    manifest = read_json(report.MANIFEST)
    paths = [p for kind in manifest["m1m2_recipes"]["runs"] for p in kind["metrics"]]
    paths += [run["metrics"] for run in manifest["m2_alone"]["runs"] + manifest["m2_alone"]["sweep"] + manifest["adgm"]["runs"]
              + manifest["adgm_leak"]["runs"]]
    assert len(paths) == 39 and all(os.path.exists(os.path.join(ROOT, p)) for p in paths)
    report.main(["--out", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["adgm.png", "adgm_leak.png", "m1m2_recipes.png", "m2_alone.png"]
    assert "| fast, on the default M1 (-87.88 nats): mean ± std of the chosen |" in capsys.readouterr().out


def test_the_adgm_figure_puts_runs_and_the_authors_log_on_one_axis_of_work(tmp_path, monkeypatch):
    rows = tmp_path / "adgm.metrics.jsonl"
    rows.write_text('{"epoch": 10, "minutes": 30.0, "test_error": 0.05}\n{"epoch": 20, "minutes": 60.0, "test_error": 0.03}\n')
    spec = {**read_json(report.MANIFEST)["adgm"], "runs": [{"label": "ours", "metrics": str(rows), "work_per_epoch": 2}]}
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, x, y, *args, **kw: drawn.append((list(x), list(y))))
    report.adgm_figure(spec, str(tmp_path / "adgm.png"))
    assert drawn[:2] == [([20, 40], [5.0, 3.0]), ([30.0, 60.0], [5.0, 3.0])]
    assert drawn[2][0][:2] == [240, 1440] and drawn[2][1][-1] == 1.61  # the authors' epochs 10 and 60, at 24 passes each
    assert (tmp_path / "adgm.png").read_bytes()[:4] == b"\x89PNG"


def test_the_leak_figure_draws_test_and_validation_error_by_the_authors_epochs(tmp_path, monkeypatch):
    """Our epochs of 499 steps in theirs of 600; the authors' log from its own columns."""
    rows = tmp_path / "run.metrics.jsonl"
    rows.write_text('{"epoch": 600, "minutes": 30.0, "test_error": 0.05, "valid_error": 0.01}\n')
    spec = {**read_json(report.MANIFEST)["adgm_leak"],
            "runs": [{"label": "ours", "metrics": str(rows), "steps_per_epoch": 499, "validation": "held out"}]}
    drawn = []
    line = types.SimpleNamespace(get_color=lambda: "k")
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, x, y, *args, **kw: drawn.append((list(x), list(y))) or [line])
    report.leak_figure(spec, str(tmp_path / "leak.png"))
    assert drawn[:2] == [([499.0], [5.0]), ([499.0], [1.0])]
    assert drawn[2][1][-1] == 1.20 and drawn[3][1][-1] == 0.02 and drawn[3][0][-1] == 1000


def test_the_report_and_table1_import_no_tensorflow_and_data_imports_no_models():
    code = ("import sys, table1, ssdgm.tools.report, ssdgm.data.mnist, ssdgm.data.batches; "
            "print(sorted({m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')} | "
            "{m for m in sys.modules if m.startswith('ssdgm.models.') and m != 'ssdgm.models.registry' "
            "and m != 'ssdgm.models.recipes'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
