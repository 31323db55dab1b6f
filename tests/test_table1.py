"""Table 1's sweep (table1.py): the plan, skipping finished cells, the report, the SLURM mapping, and
the README's table against the shipped records."""
import json
import os
import re

import matplotlib.axes
import pytest
from conftest import ROOT

import table1
from ssdgm import UserError
from ssdgm.files import metrics_path
from ssdgm.models import registry


def fake_cell(folder, model, n, seed, test_error, done=True, minutes=30.0, run_minutes=None, cpu=None):
    spec = registry.get(model)
    os.makedirs(os.path.join(folder, spec.folder), exist_ok=True)
    stem = os.path.join(folder, spec.folder, spec.weights_name("fast", "", n, seed))
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


def test_finished_cells_are_skipped_and_only_whole_cells_reach_the_readme(tmp_path, capsys):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.025)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.027, done=False)
    cells = table1.cells(["m1m2"], [600], [0, 1], "fast", weights=str(tmp_path))
    assert [table1.finished(c) for c in cells] == [True, False]
    table1.run_cells(cells[:1], jobs=2)  # nothing to run: returns at once
    assert capsys.readouterr().out.startswith("1 of 1 cells finished; running 0")
    assert "| 600 |" not in table1.markdown(cells, weights=str(tmp_path))  # a seed has not ended
    assert "| 600 | M1+M2 | fast | 2.60 ± 0.14 (2 of 2 seeds, 1 not ended) | 2.50 (0), 2.70 (1) | 2.70 |" in table1.details(cells)


def test_the_report_gives_mean_std_beside_the_papers_figure_and_the_details_apart(tmp_path):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250, minutes=20)
    fake_cell(tmp_path, "m1m2", 600, 1, 0.0270, minutes=40, run_minutes=60, cpu="AMD EPYC, 2 cores; avx2 fma")
    fake_cell(tmp_path, "m2", 3000, 1, 0.0300, minutes=10, cpu="AMD EPYC, 2 cores; avx2 fma")
    planned = table1.cells(table1.PAPER_MODELS, table1.LABELS, [0, 1], "fast", weights=str(tmp_path))
    text = table1.markdown(planned, weights=str(tmp_path))
    assert text.splitlines()[2:] == ["| 600 | M1+M2 | **2.60** ± 0.14 | 2.59 ± 0.05 | 2.35 |"]
    details = table1.details(planned)
    assert "| 600 | M1+M2 | fast | 2.60 ± 0.14 (2 of 2 seeds) | 2.50 (0), 2.70 (1) | 2.70 | 40 | 2.59 ± 0.05 |" in details
    assert "| 3000 | M2 | fast | 3.00 (1 of 2 seeds) | 3.00 (1) | 3.00 | 10 | 3.92 ± 0.63 |" in details
    assert "The records' CPUs: AMD EPYC, 2 cores; avx2 fma: 2 runs; CPU not recorded: 1 run." in details
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{table1.BEGIN}\nold\n{table1.END}\nafter\n")
    table1.write_between_markers(text, str(readme))
    assert readme.read_text() == f"before\n{table1.BEGIN}\n{text}\n{table1.END}\nafter\n"


def test_the_auxiliary_models_are_planned_at_n100_only_from_their_specs(tmp_path):
    fake_cell(tmp_path, "adgm", 100, 0, 0.0150, minutes=170)
    planned = table1.cells(table1.MODELS, table1.LABELS, None, "fast", weights=str(tmp_path))
    assert {(c["model"], c["labels"]) for c in planned if c["model"] not in table1.PAPER_MODELS} == {
        ("adgm", 100), ("sdgm", 100)}
    adgm = [c for c in planned if c["model"] == "adgm"]
    assert [c["seed"] for c in adgm] == [0, 1, 2]
    assert adgm[0]["stem"] == os.path.join(str(tmp_path), "ADGM", "adgm_labels100_seed0")
    assert adgm[0]["command"] == "python train_M2.py -train --model adgm --labels 100 --seed 0 --recipe fast --threads 1 --ship"
    assert "ADGM" not in table1.markdown(planned, weights=str(tmp_path))  # one seed of three
    assert "| 100 | ADGM | fast | 1.50 (1 of 3 seeds) | 1.50 (0) | 1.50 | 170 | 0.96 ± 0.02 † |" in table1.details(planned)
    assert not re.search(r"\| (600|1000|3000) \| [AS]DGM", table1.details(planned))


def test_the_figure_draws_a_curve_per_run_that_has_metrics(tmp_path, monkeypatch):
    fake_cell(tmp_path, "m1m2", 600, 0, 0.0250)
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, x, y, **kw: drawn.append((list(x), list(y))))
    table1.figure(table1.cells(table1.PAPER_MODELS, table1.LABELS, [0, 1], "fast", weights=str(tmp_path)),
                  str(tmp_path / "table1.png"))
    assert drawn == [([10], [2.5])]
    assert (tmp_path / "table1.png").read_bytes()[:4] == b"\x89PNG"


def test_the_readme_table_is_the_one_the_shipped_records_make():
    readme = open(os.path.join(ROOT, "README.md")).read()
    shipped = readme.split(table1.BEGIN + "\n", 1)[1].split("\n" + table1.END, 1)[0]
    assert shipped == table1.markdown(table1.every_cell())
    assert open(table1.DETAILS).read() == table1.details(table1.every_cell())


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
