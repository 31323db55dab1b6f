"""Table 1's sweep (table1.py): the plan, skipping finished cells, the report, the SLURM mapping, and
the README's table against the shipped records."""
import json
import os
import re

import pytest

import recipes
import table1
from cli import UserError
from conftest import ROOT
from files import metrics_path


def fake_cell(folder, model, n, seed, test_error, done=True, minutes=30.0, run_minutes=None, cpu=None):
    os.makedirs(os.path.join(folder, recipes.FOLDERS[model]), exist_ok=True)
    stem = os.path.join(folder, recipes.FOLDERS[model], f"{model}_labels{n}_seed{seed}{recipes.suffix(model, 'fast')}")
    record = {"test_error": test_error, "train_minutes": minutes, "recipe": "fast", **({"cpu": cpu} if cpu else {})}
    if done:
        record.update(epochs_run=300, run_minutes=run_minutes or minutes)
    with open(stem + ".json", "w") as f:
        json.dump(record, f)
    with open(metrics_path(stem), "w") as f:
        f.write(json.dumps({"epoch": 10, "minutes": 1.0, "valid_error": 0.09, "test_error": test_error}) + "\n")


def test_the_plan_is_one_ordinary_training_command_per_cell():
    cells = table1.cells(["m1m2"], [100, 600], [0, 1], "fast")
    assert [c["command"] for c in cells] == [
        f"python train_M2.py -train --model m1m2 --labels {n} --seed {s} --recipe fast --threads 1 --ship"
        for n in (100, 600) for s in (0, 1)]
    # the default recipe (fast, for both models) leaves the names bare; another names itself
    assert cells[3]["stem"].endswith(os.path.join("weights", "M2", "m1m2_labels600_seed1"))
    assert table1.cells(["m2"], [100], [0], "authors")[0]["stem"].endswith("m2_labels100_seed0_authors")


def test_finished_cells_are_skipped_and_unfinished_ones_counted(tmp_path, capsys):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.025)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.027, done=False)
    cells = table1.cells(["m1m2"], [600], [0, 1], "fast", weights=str(tmp_path))
    assert [table1.finished(c) for c in cells] == [True, False]
    table1.run_cells(cells[:1], jobs=2)  # nothing to run: returns at once
    assert capsys.readouterr().out.startswith("1 of 1 cells finished; running 0")
    text = table1.markdown(cells)
    assert "| 600 | M1+M2 | 2.60 ± 0.14 (2 of 2 seeds, 1 unfinished; worst 2.70, seed 1) |" in text


def test_the_report_gives_mean_std_and_count_beside_the_papers_figure(tmp_path):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250, minutes=20)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.0270, minutes=40, run_minutes=60, cpu="AMD EPYC, 2 cores; avx2 fma")
    fake_cell(tmp_path, "m2", 3000, 1, 0.0300, minutes=10, cpu="AMD EPYC, 2 cores; avx2 fma")
    text = table1.markdown(table1.cells(table1.MODELS, table1.LABELS, [0, 1, 2], "fast", weights=str(tmp_path)))
    row = next(line for line in text.splitlines() if line.startswith("| 600 | M1+M2"))
    assert row == "| 600 | M1+M2 | 2.60 ± 0.14 (2 of 3 seeds; worst 2.70, seed 1) | 40 | fast | 2.59 ± 0.05 | 2.35 |"
    assert "| 1000 | M2 | not yet run |" in text
    assert text.endswith("\n3 runs, 90 minutes (1.5 hours) of one core in all. "
                         "AMD EPYC, 2 cores; avx2 fma: 2 runs. CPU not recorded: 1 run.")
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{table1.BEGIN}\nold\n{table1.END}\nafter\n")
    table1.write_between_markers(text, str(readme))
    assert readme.read_text() == f"before\n{table1.BEGIN}\n{text}\n{table1.END}\nafter\n"


def test_adgm_and_sdgm_have_rows_at_n100_only_outside_the_one_core_total(tmp_path):
    fake_cell(tmp_path, "adgm", 100, 0, 0.0150, minutes=170)
    fake_cell(tmp_path, "m2", 100, 0, 0.0700, minutes=55)
    planned = table1.cells(table1.MODELS + table1.AUXILIARY, table1.LABELS, None, "fast", weights=str(tmp_path))
    assert {(c["model"], c["labels"]) for c in planned if c["model"] in table1.AUXILIARY} == {("adgm", 100), ("sdgm", 100)}
    adgm = [c for c in planned if c["model"] == "adgm"]
    assert [c["seed"] for c in adgm] == [0, 1, 2]
    assert adgm[0]["stem"] == os.path.join(str(tmp_path), "ADGM", "adgm_labels100_seed0")
    assert adgm[0]["command"] == "python train_M2.py -train --model adgm --labels 100 --seed 0 --recipe fast --threads 1 --ship"
    text = table1.markdown(planned)
    assert "| 100 | ADGM | 1.50 (1 of 3 seeds) | 170 | fast | 0.96 ± 0.02 † |  |" in text
    assert "| 100 | SDGM | not yet run |" in text
    assert not re.search(r"\| (600|1000|3000) \| [AS]DGM", text)
    assert "\n1 run, 55 minutes (0.9 hours) of one core in all." in text
    assert "Maaløe et al. (2016)" in table1.markdown(planned)
    assert "Maaløe" not in table1.markdown(table1.cells(table1.MODELS, [100], [0], "fast", weights=str(tmp_path)))


def test_the_figure_draws_a_curve_per_run_that_has_metrics(tmp_path, monkeypatch):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250)
    drawn = []
    monkeypatch.setattr(table1.plt.Axes, "plot", lambda ax, x, y, **kw: drawn.append((list(x), list(y))))
    table1.figure(table1.cells(table1.MODELS, table1.LABELS, [0, 1], "fast", weights=str(tmp_path)),
                  str(tmp_path / "table1.png"))
    assert drawn == [([10], [2.5])]
    assert (tmp_path / "table1.png").read_bytes()[:4] == b"\x89PNG"


def test_the_readme_table_is_the_one_the_shipped_records_make():
    readme = open(os.path.join(ROOT, "README.md")).read()
    shipped = readme.split(table1.BEGIN + "\n", 1)[1].split("\n" + table1.END, 1)[0]
    assert shipped == table1.markdown(table1.every_cell())


def test_a_slurm_array_index_maps_to_that_line_of_the_plan(capsys):
    table1.main(["--print-commands"])
    lines = capsys.readouterr().out.splitlines()
    for index in (0, 7, len(lines) - 1):
        table1.main(["--command-at", str(index)])
        assert capsys.readouterr().out.strip() == lines[index]
    script = open(os.path.join(ROOT, "table1.sbatch")).read()
    assert f"#SBATCH --array=0-{len(lines) - 1}" in script
    assert re.search(r'table1\.py --command-at "\$SLURM_ARRAY_TASK_ID"', script)
    assert len(lines) == 2 * (5 + 3 + 3 + 3)  # two models; five splits at N=100, three at the others
    with pytest.raises(UserError, match="the plan has 28 commands"):
        table1.main(["--command-at", "28"])
