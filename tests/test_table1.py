"""Table 1's sweep (training.py, table1.py): the plan, skipping finished cells, the report, the SLURM mapping."""
import json
import os
import re

import pytest

from common import UserError

import report
import table1
import training
from conftest import ROOT


def fake_cell(folder, model, n, seed, test_error, done=True, minutes=30.0, run_minutes=None):
    stem = os.path.join(folder, f"{model}_labels{n}_seed{seed}{training.recipe_suffix(model, 'fast')}")
    record = {"test_error": test_error, "train_minutes": minutes, "recipe": "fast"}
    with open(stem + ".json", "w") as f:
        json.dump({**record, "run_minutes": run_minutes} if run_minutes else record, f)
    with open(stem + ".log", "w") as f:
        f.write(f"epoch   10 | valid err 9.00% | test err {100 * test_error:.2f}% |   6.0 s/epoch,    1.0 min | best\n"
                + ("done: 300 epochs\n" if done else ""))


def test_the_plan_is_one_ordinary_training_command_per_cell():
    cells = training.table1_cells(["m1m2"], [100, 600], [0, 1], "fast")
    assert [c["command"] for c in cells] == [
        f"python train_M2.py -train --model m1m2 --labels {n} --seed {s} --recipe fast --threads 1"
        for n in (100, 600) for s in (0, 1)]
    # the default recipe (fast, for both models) leaves the names bare; another names itself
    assert cells[3]["stem"].endswith(os.path.join("weights", "M2", "m1m2_labels600_seed1"))
    assert training.table1_cells(["m2"], [100], [0], "authors")[0]["stem"].endswith("m2_labels100_seed0_authors")
    assert training.table1_cells(["m1m2", "m2"], [100], [0], "authors")[0]["stem"].endswith("m1m2_labels100_seed0_authors")


def test_finished_cells_are_skipped_and_unfinished_ones_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(training, "WEIGHTS_M2", str(tmp_path))
    fake_cell(tmp_path, "m1m2", 600, 0, 0.025)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.027, done=False)
    cells = training.table1_cells(["m1m2"], [600], [0, 1], "fast")
    assert [training.cell_finished(c) for c in cells] == [True, False]
    training.run_cells(cells[:1], jobs=2)  # nothing to run: returns at once
    assert capsys.readouterr().out.startswith("1 of 1 cells finished; running 0")


def test_the_report_gives_mean_std_and_count_beside_the_papers_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "WEIGHTS_M2", str(tmp_path))
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250, minutes=20)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.0270, minutes=40, run_minutes=60)  # a whole run counts where known
    text = training.table1_markdown(training.table1_cells(training.MODELS, training.LABELS, [0, 1, 2], "fast"))
    row = next(line for line in text.splitlines() if line.startswith("| 600 | M1+M2"))
    assert row == "| 600 | M1+M2 | 2.60 ± 0.14 (2 of 3 seeds) | 40 | fast | 2.59 ± 0.05 | 2.35 |"
    assert "| 3000 | M2 | not yet run |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{training.BEGIN}\nold\n{training.END}\nafter\n")
    training.write_between_markers(text, str(readme))
    assert readme.read_text() == f"before\n{training.BEGIN}\n{text}\n{training.END}\nafter\n"


def test_the_report_draws_a_curve_per_run_that_has_a_log(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "WEIGHTS_M2", str(tmp_path))
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250)
    drawn = []
    monkeypatch.setattr(report.plt.Axes, "plot", lambda ax, x, y, **kw: drawn.append((list(x), list(y))))
    report.table1_figure(training.table1_cells(training.MODELS, training.LABELS, [0, 1], "fast"),
                         str(tmp_path / "table1.png"))
    assert drawn == [([10], [2.5])]
    assert (tmp_path / "table1.png").read_bytes()[:4] == b"\x89PNG"


def test_a_slurm_array_index_maps_to_that_line_of_the_plan(capsys):
    table1.main(["--print-commands"])
    lines = capsys.readouterr().out.splitlines()
    for index in (0, 7, len(lines) - 1):
        table1.main(["--command-at", str(index)])
        assert capsys.readouterr().out.strip() == lines[index]
    script = open(os.path.join(ROOT, "table1.sbatch")).read()
    assert f"#SBATCH --array=0-{len(lines) - 1}" in script
    assert re.search(r'table1\.py --command-at "\$SLURM_ARRAY_TASK_ID"', script)
    with pytest.raises(UserError, match="the plan has 24 commands"):
        table1.main(["--command-at", "24"])
