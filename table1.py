"""The paper's Table 1 (test error of M2 alone and M1+M2 for N = 100, 600, 1000, 3000 labels), and
beside it at N=100 the auxiliary models ADGM and SDGM of Maaløe et al. (2016).

    python table1.py --report                 # the table into README.md and docs/table1.png, from the records
    python table1.py --jobs 2                 # trains the missing cells, two at a time, then reports
    python table1.py --print-commands         # one training command a line, for GNU parallel or SLURM

Each cell is one ordinary `train_M2.py -train` command with its own run folder and JSON record; this
script only plans, launches and collects (a finished cell is skipped, an unfinished one resumes).
It reads records and metrics files, never logs, and imports no TensorFlow.
"""
import collections
import os
import shutil
import subprocess
import sys
import time

import matplotlib.ticker
import numpy as np

from ssdgm.files import atomic_write, metrics_path, read_json
from ssdgm.models import registry
from ssdgm.tools import report
from ssdgm.training.cli import ArgumentParser, UserError, count, run_cli, seed_value
from ssdgm.training.figures import save_figure, subplots

ROOT = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(ROOT, "weights")
README = os.path.join(ROOT, "README.md")
SWEEP_OUTPUT = os.path.join(ROOT, "temp", "table1")  # each cell's console output
DETAILS = os.path.join(ROOT, "docs", "table1.md")
LABELS = (100, 600, 1000, 3000)
RECIPES = ("fast", "authors")
# Every model with a paper figure is a row of the table (registry order); the paper's Table 1 has those
# at every N, the default of --models. The auxiliary models' paper gives N=100 only.
MODELS = tuple(s.name for s in registry.SPECS.values() if s.paper)
PAPER_MODELS = tuple(m for m in MODELS if set(LABELS) <= set(registry.get(m).paper))
# Rows of the README's table for the models without a test error: N, the model, its record under
# weights/, the figure read from it, how it reads, the best public figure.
OTHER_ROWS = (("0", "M1, 784-500-500-50", "M1/m1.json", "test_bound", "{:.2f} nats (test bound)",
               "-87.17 nats (the authors' released M1, evaluated here)"),
              ("all", "M2 (the analogy model)", "M2/m2_labelsall_seed0_authors.json", "valid_labelled_bound",
               "{:.2f} nats (validation bound)", ""),
              ("all", "M2 with a 2-D z (the styles figure)", "M2/m2_labelsall_seed0_styles.json",
               "valid_labelled_bound", "{:.2f} nats (validation bound)", ""))
BEGIN, END = "<!-- table1 -->", "<!-- /table1 -->"


def cells(models, labels, seeds, recipe, weights=WEIGHTS):
    """Table 1's cells, in order: (model, N, seed), each with the ordinary `train_M2.py -train`
    command that trains it (one thread) and the stem of its weights, JSON, log and metrics; seeds
    None: each model's own at each N (its Spec's seeds). weights: the folder of weights/."""
    planned = []
    for model in models:
        spec = registry.get(model)
        for n in [n for n in labels if n in spec.paper]:
            for seed in seeds or spec.seeds[n]:
                command = (f"python train_M2.py -train --model {model} --labels {n} --seed {seed} "
                           f"--recipe {recipe} --threads 1 --ship")
                stem = os.path.join(weights, spec.folder, spec.weights_name(recipe, "", n, seed))
                planned.append({"model": model, "labels": n, "seed": seed, "recipe": recipe, "command": command,
                                "stem": stem})
    return planned


def every_cell(seeds=None, weights=WEIGHTS):
    """The cells of every model, every N and both recipes."""
    return [c for recipe in RECIPES for c in cells(MODELS, LABELS, seeds, recipe, weights)]


def finished(cell):
    """A cell is finished when its record says its run ended (epochs_run, written at the end)."""
    return os.path.exists(cell["stem"] + ".json") and "epochs_run" in read_json(cell["stem"] + ".json")


def read_record(path):
    """A cell's JSON record; UserError unless it holds what the table reads."""
    record = read_json(path)
    missing = [k for k in ("test_error", "train_minutes") if not isinstance(record, dict) or k not in record]
    if missing:
        raise UserError(f"{path}: not a run's record (no {missing[0]}); restore it or remove the cell's files")
    return record


def run_cells(planned, jobs):
    """Runs the unfinished cells, `jobs` at a time, each on one thread pinned to its own core
    (taskset, where there is one); a line per cell as it ends."""
    todo = [c for c in planned if not finished(c)]
    print(f"{len(planned) - len(todo)} of {len(planned)} cells finished; running {len(todo)}, {jobs} at a time")
    running = {}  # slot -> (cell, process, start)
    while todo or running:
        for slot in [s for s in range(jobs) if s not in running][: len(todo)]:
            cell = todo.pop(0)
            pin = ["taskset", "-c", str(slot % os.cpu_count())] if shutil.which("taskset") else []
            os.makedirs(SWEEP_OUTPUT, exist_ok=True)
            with open(os.path.join(SWEEP_OUTPUT, os.path.basename(cell["stem"]) + ".out"), "a") as out:
                process = subprocess.Popen(pin + [sys.executable, *cell["command"].split()[1:]], cwd=ROOT,
                                           stdout=out, stderr=subprocess.STDOUT)
            running[slot] = (cell, process, time.time())
        time.sleep(5)
        for slot, (cell, process, start) in list(running.items()):
            if process.poll() is None:
                continue
            del running[slot]
            state = ("done" if process.returncode == 0 else
                     f"failed (exit {process.returncode}), see {SWEEP_OUTPUT}/{os.path.basename(cell['stem'])}.out")
            print(f"{cell['model']} N={cell['labels']} seed {cell['seed']}: {state} after "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)


def summarise(records):
    """Mean, standard deviation (over seeds, ddof 1) and count of test errors in %, and the minutes
    of each run (the whole run where it ended, else to its chosen weights)."""
    errors = 100 * np.array([r["test_error"] for r in records])
    std = float(np.std(errors, ddof=1)) if len(errors) > 1 else float("nan")
    minutes = [r.get("run_minutes", r["train_minutes"]) for r in records]
    return float(np.mean(errors)), std, len(errors), minutes


def groups(planned):
    """The cells grouped by (N, model, recipe), in the table's order: N, then the registry's order."""
    keys = sorted(dict.fromkeys((c["labels"], c["model"], c["recipe"]) for c in planned),
                  key=lambda k: (k[0], MODELS.index(k[1]), RECIPES.index(k[2])))
    return [(key, [c for c in planned if (c["labels"], c["model"], c["recipe"]) == key]) for key in keys]


def markdown(planned, weights=WEIGHTS):
    """The README's results table: a row per N and model whose default recipe has a record for every
    seed (mean ± std over seeds of the test error), then the models without a test error (OTHER_ROWS),
    from the records under `weights` that exist."""
    lines = ["| N | model | here: test error % | paper | best public |", "| --- | --- | --- | --- | --- |"]
    for (n, model, recipe), group in groups(planned):
        spec = registry.get(model)
        if recipe != spec.default_recipe or not all(finished(c) for c in group):
            continue
        mean, std, runs, _ = summarise([read_record(c["stem"] + ".json") for c in group])
        here = f"**{mean:.2f}** ± {std:.2f}" if runs > 1 else f"**{mean:.2f}**"
        lines.append(f"| {n} | {spec.title} | {here} | {spec.paper[n]} | {spec.best_public.get(n, '')} |")
    for n, title, path, key, form, best in OTHER_ROWS:
        if os.path.exists(os.path.join(weights, path)):
            value = read_json(os.path.join(weights, path))[key]
            lines.append(f"| {n} | {title} | {form.format(value)} |  | {best} |")
    return "\n".join(lines)


def details(planned):
    """docs/table1.md: every N, model and recipe with a record, with its seeds' errors, the worst
    seed, the minutes of a run and the CPUs that made them."""
    lines = ["# Table 1 as run here, cell by cell", "",
             "Written by `python table1.py --report` from the records under `weights/`. Test error over the "
             "10,000 test images of the weights chosen on validation, for each labelled split (seed); minutes of "
             "a whole run on one core (to its chosen weights where it did not end).", "",
             "| N | model | recipe | test error %: mean ± std (seeds) | each seed | worst | minutes a run | paper |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    records_made = []
    for (n, model, recipe), group in groups(planned):
        done = [c for c in group if os.path.exists(c["stem"] + ".json")]
        if not done:
            continue
        records = [read_record(c["stem"] + ".json") for c in done]
        records_made += records
        mean, std, runs, minutes = summarise(records)
        unfinished = sum(not finished(c) for c in done)
        state = f"{runs} of {len(group)} seeds" + (f", {unfinished} not ended" if unfinished else "")
        each = ", ".join(f"{100 * r['test_error']:.2f} ({c['seed']})" for r, c in zip(records, done))
        worst = max(100 * r["test_error"] for r in records)
        spread = f" ± {std:.2f}" if runs > 1 else ""
        lines.append(f"| {n} | {registry.get(model).title} | {recipe} | {mean:.2f}{spread} ({state}) | {each} | "
                     f"{worst:.2f} | {np.mean(minutes):.0f} | {registry.get(model).paper[n]} |")
    counts = collections.Counter(r.get("cpu", "CPU not recorded") for r in records_made)
    lines += ["", "The records' CPUs: " + "; ".join(f"{cpu}: {k} run{'s' if k > 1 else ''}"
                                                    for cpu, k in sorted(counts.items())) + ".", ""]
    return "\n".join(lines)


def missing(planned):
    """A line for each model, N and recipe that has records for some of its seeds but not all,
    naming the seeds without one (the table's mean leaves them out)."""
    lines = []
    for key in dict.fromkeys((c["model"], c["labels"], c["recipe"]) for c in planned):
        group = [c for c in planned if (c["model"], c["labels"], c["recipe"]) == key]
        absent = [c for c in group if not os.path.exists(c["stem"] + ".json")]
        if 0 < len(absent) < len(group):
            lines.append(f"{key[0]} N={key[1]} {key[2]}: no record for seed{'s' if len(absent) > 1 else ''} "
                         f"{', '.join(str(c['seed']) for c in absent)} ({os.path.dirname(absent[0]['stem'])})")
    return lines


def write_between_markers(text, path):
    """Puts text between the BEGIN and END markers of the file at path (the README's Table 1)."""
    readme = open(path).read()
    if BEGIN not in readme or END not in readme:
        raise UserError(f"{path}: no {BEGIN} ... {END} markers to put the table between")
    head, rest = readme.split(BEGIN, 1)
    new = head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1]
    atomic_write(path, lambda tmp: open(tmp, "w").write(new))


def figure(planned, path):
    """Test error against epoch of every cell that has metrics, a panel per N, coloured by model and
    recipe, beside the paper's M1+M2."""
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:pink", "tab:brown", "tab:olive"]
    colors = {key: palette[i % len(palette)] for i, key in enumerate((m, r) for m in MODELS for r in RECIPES)}
    fig, axes = subplots(1, len(LABELS), figsize=(4 * len(LABELS), 3.6), sharey=True)
    for ax, n in zip(axes, LABELS):
        named = set()
        for cell in planned:
            path_metrics = metrics_path(cell["stem"])
            if cell["labels"] != n or not os.path.exists(path_metrics):
                continue
            rows = [r for r in report.read_metrics(path_metrics) if r["epoch"] > 0]
            key = (cell["model"], cell["recipe"])
            label = None if key in named else f"{registry.get(key[0]).title}, {key[1]}"
            named.add(key)
            ax.plot([r["epoch"] for r in rows], [100 * r["test_error"] for r in rows], color=colors[key],
                    alpha=0.8, label=label)
        best = min(PAPER_MODELS, key=lambda m: float(registry.get(m).paper[n].split()[0]))
        ax.axhline(float(registry.get(best).paper[n].split()[0]), color="grey", linestyle="--", linewidth=1,
                   label=f"paper, {registry.get(best).title}")
        if not named:
            ax.text(0.5, 0.5, "not yet run", transform=ax.transAxes, ha="center", color="grey")
        ax.set_title(f"N = {n}")
        report.log_axes(ax, "epoch")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test error (%)")
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks([2, 3, 5, 10, 20, 50], ["2", "3", "5", "10", "20", "50"])
    save_figure(fig, path)


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(PAPER_MODELS),
                   help="models (default the paper's two; adgm and sdgm run at N=100 only)")
    p.add_argument("--labels", nargs="+", type=int, choices=LABELS, default=list(LABELS),
                   help="label counts N (default all four)")
    p.add_argument("--seeds", nargs="+", type=seed_value,
                   help="seeds, for every N (default: 0-4 for N=100, 0-2 for the others)")
    p.add_argument("--recipe", choices=RECIPES, default=RECIPES[0], help=f"training recipe (default {RECIPES[0]})")
    p.add_argument("--jobs", type=count, default=0, help="train the unfinished cells, K at a time (0: none)")
    p.add_argument("--print-commands", action="store_true", help="print one training command a line")
    p.add_argument("--command-at", type=count, metavar="I",
                   help="print the I-th command (from 0), as a SLURM array task does with its index")
    p.add_argument("--report", action="store_true", help="write the table of every shipped cell into README.md and docs/table1.png (after --jobs, "
                        "if both are given)")
    args = p.parse_args(argv)
    if not (args.report or args.jobs or args.print_commands or args.command_at is not None):
        raise UserError("nothing to do: give --report, --print-commands, --command-at I or --jobs K (see --help)")
    narrowed = [f"--{k}" for k in ("models", "labels", "seeds", "recipe") if getattr(args, k) != p.get_default(k)]
    if args.report and narrowed:
        raise UserError(f"--report writes README.md and docs/table1.png from every shipped cell; leave out "
                        f"{' '.join(narrowed)} (they choose the cells to train or print)")
    if args.seeds:
        args.seeds = list(dict.fromkeys(args.seeds))
    planned = cells(args.models, args.labels, args.seeds, args.recipe)
    if not planned:
        raise UserError("no cell of Table 1 matches these --models and --labels (adgm and sdgm run at N=100 only)")
    if args.print_commands:
        print("\n".join(c["command"] for c in planned))
    if args.command_at is not None:
        if args.command_at >= len(planned):
            raise UserError(f"--command-at {args.command_at}: the plan has {len(planned)} commands")
        print(planned[args.command_at]["command"])
    if args.jobs:
        run_cells(planned, args.jobs)
    if args.report:
        text = markdown(every_cell())
        write_between_markers(text, README)
        atomic_write(DETAILS, lambda tmp: open(tmp, "w").write(details(every_cell())))
        figure(every_cell(), os.path.join(ROOT, "docs", "table1.png"))
        print(text)
        for line in missing(every_cell()):
            print(line, file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
