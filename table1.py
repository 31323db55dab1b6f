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

import recipes
import report
from cli import ArgumentParser, UserError, count, run_cli, seed_value
from figures import plt, save_figure
from files import atomic_write, metrics_path, read_json

ROOT = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(ROOT, "weights")
README = os.path.join(ROOT, "README.md")
SWEEP_OUTPUT = os.path.join(ROOT, "temp", "table1")  # each cell's console output
LABELS = (100, 600, 1000, 3000)
MODELS = ("m1m2", "m2")  # the paper's Table 1
AUXILIARY = ("adgm", "sdgm")  # at N=100 only, as their paper
NAMES = {"m1m2": "M1+M2", "m2": "M2", "adgm": "ADGM", "sdgm": "SDGM"}
# Labelled splits (seeds) a cell is run on: five at N=100, where the split moves the error most.
SEEDS = {100: (0, 1, 2, 3, 4), 600: (0, 1, 2), 1000: (0, 1, 2), 3000: (0, 1, 2)}
AUXILIARY_SEEDS = (0, 1, 2)
# The paper's Table 1 (for ADGM and SDGM their own paper's) and the best public version (PyTorch, one
# seed), for comparison only. A model is run at the N it has a paper figure for.
PAPER = {("m2", 100): "11.97 ± 1.71", ("m2", 600): "4.94 ± 0.13", ("m2", 1000): "3.60 ± 0.56",
         ("m2", 3000): "3.92 ± 0.63", ("m1m2", 100): "3.33 ± 0.14", ("m1m2", 600): "2.59 ± 0.05",
         ("m1m2", 1000): "2.40 ± 0.02", ("m1m2", 3000): "2.18 ± 0.04", ("adgm", 100): "0.96 ± 0.02 †",
         ("sdgm", 100): "1.32 ± 0.07"}
PYTORCH = {("m2", 100): "7.15", ("m1m2", 100): "2.80", ("m1m2", 600): "2.35", ("m1m2", 1000): "2.45",
           ("m1m2", 3000): "2.44"}
BEGIN, END = "<!-- table1 -->", "<!-- /table1 -->"


def cells(models, labels, seeds, recipe, weights=WEIGHTS):
    """Table 1's cells, in order: (model, N, seed), each with the ordinary `train_M2.py -train`
    command that trains it (one thread) and the stem of its weights, JSON, log and metrics; seeds
    None: each N's own (SEEDS; AUXILIARY_SEEDS for ADGM and SDGM). weights: the folder of weights/."""
    planned = []
    for model in models:
        for n in [n for n in labels if (model, n) in PAPER]:
            for seed in seeds or (AUXILIARY_SEEDS if model in AUXILIARY else SEEDS[n]):
                command = (f"python train_M2.py -train --model {model} --labels {n} --seed {seed} "
                           f"--recipe {recipe} --threads 1 --ship")
                stem = os.path.join(weights, recipes.FOLDERS[model], f"{model}_labels{n}_seed{seed}{recipes.suffix(model, recipe)}")
                planned.append({"model": model, "labels": n, "seed": seed, "recipe": recipe, "command": command,
                                "stem": stem})
    return planned


def every_cell(seeds=None, weights=WEIGHTS):
    """The cells of every model, every N and both recipes."""
    return [c for recipe in ("fast", "authors") for c in cells(MODELS + AUXILIARY, LABELS, seeds, recipe, weights)]


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


def cpus(records):
    """How many of the records each CPU made, as the records name it ('not recorded' for runs made
    before records named it): 'CPU: n runs.' sentences."""
    counts = collections.Counter(r.get("cpu", "CPU not recorded") for r in records)
    return " ".join(f"{cpu}: {n} run{'s' if n > 1 else ''}." for cpu, n in sorted(counts.items()))


def markdown(planned):
    """Markdown Table 1 from the JSON records of the cells that have one: a row per N, model and
    recipe that has results (mean ± std over seeds, and the worst seed), a 'not yet run' row for an
    N and model with none; then the minutes of one core of all the runs of the paper's models, and
    the CPUs (one core of each, the other core training too or not)."""
    lines = ["| N | model | here: test error % (seeds) | minutes a run | recipe | paper | best public (PyTorch) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    every_record, total = [], 0.0
    models = [m for m in MODELS + AUXILIARY if any(c["model"] == m for c in planned)]
    for n in LABELS:
        for model in [m for m in models if (m, n) in PAPER]:
            rows = []
            for recipe in sorted({c["recipe"] for c in planned}):
                group = [c for c in planned if (c["model"], c["labels"], c["recipe"]) == (model, n, recipe)]
                done = [c for c in group if os.path.exists(c["stem"] + ".json")]
                if not done:
                    continue
                records = [read_record(c["stem"] + ".json") for c in done]
                mean, std, runs, minutes = summarise(records)
                if model in MODELS:
                    every_record += records
                    total += sum(minutes)
                unfinished = sum(not finished(c) for c in done)
                worst_error, worst_seed = max((r["test_error"], c["seed"]) for r, c in zip(records, done))
                here = (f"{mean:.2f}{f' ± {std:.2f}' if runs > 1 else ''} ({runs} of {len(group)} seeds"
                        f"{f', {unfinished} unfinished' if unfinished else ''}"
                        f"{f'; worst {100 * worst_error:.2f}, seed {worst_seed}' if runs > 1 else ''})")
                rows.append([here, f"{np.mean(minutes):.0f}", recipe])
            for row in rows or [["not yet run", "", ""]]:
                lines.append(f"| {n} | {NAMES[model]} | " + " | ".join(row) + f" | {PAPER[(model, n)]} | {PYTORCH.get((model, n), '')} |")
    if any(m in AUXILIARY for m in models):
        lines.append("\nADGM and SDGM: the auxiliary models of Maaløe et al. (2016), whose paper gives N=100 only "
                     "(its figures in the paper column); a run's minutes are its own on one or two threads, "
                     "outside the total below. †: the ADGM authors' released code computes its unlabelled bound "
                     "with a label leak (see below).")
    lines.append(f"\n{len(every_record)} run{'s' if len(every_record) != 1 else ''}, {total:.0f} minutes ({total / 60:.1f} hours) of one core in all. "
                 f"{cpus(every_record)}")
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
    colors = {("m1m2", "fast"): "tab:blue", ("m1m2", "authors"): "tab:orange",
              ("m2", "fast"): "tab:green", ("m2", "authors"): "tab:red",
              ("adgm", "fast"): "tab:purple", ("adgm", "authors"): "tab:pink",
              ("sdgm", "fast"): "tab:brown", ("sdgm", "authors"): "tab:olive"}
    fig, axes = plt.subplots(1, len(LABELS), figsize=(4 * len(LABELS), 3.6), sharey=True)
    for ax, n in zip(axes, LABELS):
        named = set()
        for cell in planned:
            path_metrics = metrics_path(cell["stem"])
            if cell["labels"] != n or not os.path.exists(path_metrics):
                continue
            rows = [r for r in report.read_metrics(path_metrics) if r["epoch"] > 0]
            key = (cell["model"], cell["recipe"])
            label = None if key in named else f"{NAMES[key[0]]}, {key[1]}"
            named.add(key)
            ax.plot([r["epoch"] for r in rows], [100 * r["test_error"] for r in rows], color=colors[key],
                    alpha=0.8, label=label)
        ax.axhline(float(PAPER[("m1m2", n)].split()[0]), color="grey", linestyle="--", linewidth=1,
                   label="paper, M1+M2")
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
    p.add_argument("--models", nargs="+", choices=MODELS + AUXILIARY, default=list(MODELS),
                   help="models (default the paper's two; adgm and sdgm run at N=100 only)")
    p.add_argument("--labels", nargs="+", type=int, choices=LABELS, default=list(LABELS),
                   help="label counts N (default all four)")
    p.add_argument("--seeds", nargs="+", type=seed_value,
                   help="seeds, for every N (default: 0-4 for N=100, 0-2 for the others)")
    p.add_argument("--recipe", choices=["fast", "authors"], default="fast", help="training recipe (default fast)")
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
        figure(every_cell(), os.path.join(ROOT, "docs", "table1.png"))
        print(text)
        for line in missing(every_cell()):
            print(line, file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
