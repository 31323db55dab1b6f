"""Draws the README's curves from the training logs shipped beside the weights.

    python report.py        # docs/m1m2_recipes.png, docs/m2_alone.png and the recipes' table

Only logs are read, so the figures can be redrawn on any machine without training anything.
"""
import argparse
import math
import os

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import atomic_write, quiet_tensorflow, run_cli  # noqa: E402

quiet_tensorflow()  # training.py, which reads the logs it writes, imports TensorFlow
from training import LABELS, PAPER, read_log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "weights", "M2")
SWEEP = os.path.join(HERE, "docs", "m2_sweep")  # M2-alone recipe sweep on a lent GPU (its README)
# M1+M2, N=100 runs by recipe: (label, suffix of the weights' names, colour). The default runs are on
# the default M1; every other run is on the first M1 unless its label names another. The fast
# recipe's first version (300 epochs, annealed over the last 200), the fast recipe on the first and
# the weight-averaged M1 and trials on seed 2 only are kept for their curves.
M1M2_RUNS = (("fast, on the default M1 (-87.88 nats)", "", "tab:blue"),
             ("fast, on the first M1 (-89.06 nats)", "_m1first", "tab:brown"),
             ("fast, first version (300 epochs)", "_fast300", "tab:cyan"),
             ("fast, on the weight-averaged M1 (-88.62 nats)", "_m1ema", "tab:purple"),
             ("trial, seed 2: warm-up, then 3e-3 (280 epochs)", "_warmup3e-3", "tab:green"),
             ("trial, seed 2: weight average 0.999 (320 epochs)", "_ema0.999", "tab:red"),
             ("authors", "_authors", "tab:orange"))
# The best public M2-alone run (PyTorch, one hidden layer of 500, 3000 epochs): its logged test
# accuracy at N=100, by epoch, drawn as a reference beside ours.
REFERENCE_M2_ALONE = {10: 57.5, 20: 62.1, 100: 60.7, 300: 64.5, 400: 70.2, 500: 74.6, 600: 78.3,
                      900: 84.6, 1000: 85.5, 1200: 87.7, 1500: 89.4, 2000: 91.4, 3000: 92.85}


def save(fig, path):
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    print(path)


def recipe_logs(suffix):
    """(seed, path) of each M1+M2, N=100 log of the run kind named by `suffix` (see M1M2_RUNS) that is
    shipped, seeds 0-2 in order."""
    paths = [(seed, os.path.join(WEIGHTS, f"m1m2_labels100_seed{seed}{suffix}.log")) for seed in (0, 1, 2)]
    return [(seed, path) for seed, path in paths if os.path.exists(path)]


def recipes_figure(path):
    """M1+M2, N=100: test error against epochs and against minutes of one core, both recipes."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for recipe, suffix, color in M1M2_RUNS:
        for i, (_, log) in enumerate(recipe_logs(suffix)):
            rows = read_log(log)
            error = [100 * r["test err"] for r in rows]
            label = recipe if i == 0 else None
            axes[0].plot([r["epoch"] for r in rows], error, color=color, alpha=0.8, label=label)
            axes[1].plot([r["minutes"] for r in rows], error, color=color, alpha=0.8, label=label)
    for ax, xlabel in zip(axes, ("epoch", "minutes of training (one core each)")):
        ax.axhline(3.33, color="grey", linestyle="--", linewidth=1, label="paper: 3.33%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test error (%)")
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks([2.5, 3, 4, 5, 7, 10, 20, 50], ["2.5", "3", "4", "5", "7", "10", "20", "50"])
    # Below the plots: inside, the legend hid the early curves.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("M1+M2, 100 labels, seeds 0-2: the fast recipe (peak 1e-3, annealed) and the authors' (3e-4)")
    save(fig, path)


def recipes_table():
    """Markdown: per recipe and seed, test error at fixed epochs and minutes, epochs and minutes to the
    paper's 3.33%, and the weights chosen on validation; then mean and std over the seeds."""
    budgets_epochs, budgets_minutes = (100, 200, 300, 450), (15, 30, 45, 60)
    head = ([f"test error at epoch {e}" for e in budgets_epochs] + [f"at {m} min" for m in budgets_minutes]
            + ["first test error <= 3.33%: epoch (min)", "whole run: epochs, min",
               "chosen on validation: epoch, min, test error"])
    lines = ["| recipe, seed | " + " | ".join(head) + " |", "| --- " * (len(head) + 1) + "|"]
    for recipe, suffix, _ in M1M2_RUNS:
        chosen = []
        for seed, log in recipe_logs(suffix):
            rows = read_log(log)

            def at(key, value):
                before = [r for r in rows if r[key] <= value]
                return f"{100 * before[-1]['test err']:.2f}%" if before and rows[-1][key] >= value else ""
            reached = [r for r in rows if r["test err"] <= 0.0333]
            best = min(rows, key=lambda r: (r["valid err"], r["epoch"]))
            chosen.append(best["test err"])
            cells = ([at("epoch", e) for e in budgets_epochs] + [at("minutes", m) for m in budgets_minutes]
                     + [f"{reached[0]['epoch']} ({reached[0]['minutes']:.0f})" if reached else "not reached",
                        f"{rows[-1]['epoch']}, {rows[-1]['minutes']:.0f}",
                        f"{best['epoch']}, {best['minutes']:.0f}, {100 * best['test err']:.2f}%"])
            lines.append(f"| {recipe}, {seed} | " + " | ".join(cells) + " |")
        if len(chosen) > 1:
            mean, std = 100 * np.mean(chosen), 100 * np.std(chosen, ddof=1)
            lines.append(f"| {recipe}: mean ± std of the chosen | " + " | " * (len(head) - 1)
                         + f"**{mean:.2f}% ± {std:.2f}** |")
    return "\n".join(lines)


def m2_alone_figure(path):
    """M2 alone on pixels, N=100: our runs' test error by epoch beside the reference's (left); where a
    log has them, the entropy of q(y|x) (middle) and the error of the generative classification
    argmax_y L(x, y) (right), beside an M1+M2 run's for contrast."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    runs = (("m2_labels100_seed0.log", "fast recipe: warm-up, then 3e-3 (shipped)"),
            ("m2_labels100_seed0_nowarmup.log", "no warm-up, 1e-3"),
            ("m2_labels100_seed0_e110.log", "no warm-up, 1e-3 annealed over epochs 60-110"),
            ("m2_labels100_seed0_authors.log", "no warm-up, authors' rate (3e-4)"),
            ("m2_labels100_seed0_twolayers.log", "two layers of 500, authors' rate (3e-4)"),
            ("m1m2_labels600_seed2.log", "M1+M2, 600 labels, seed 2 (for contrast)"))
    for name, label in runs:
        log = os.path.join(WEIGHTS, name)
        if not os.path.exists(log):
            continue
        rows = read_log(log)
        epochs = [r["epoch"] for r in rows]
        if name.startswith("m2_"):
            line, = axes[0].plot(epochs, [100 * r["test err"] for r in rows], marker=".", label=label)
            style = {"color": line.get_color()}
        else:
            style = {"color": "tab:gray", "linestyle": "-."}
        diagnosed = [r for r in rows if "entropy" in r]
        if diagnosed:
            epochs = [r["epoch"] for r in diagnosed]
            axes[1].plot(epochs, [r["entropy"] for r in diagnosed], marker=".", label=label, **style)
            axes[2].plot(epochs, [100 * r["gen err"] for r in diagnosed], marker=".", label=label, **style)
    for name, label, colour in (("w2000_3e-3", "2000-step warm-up, 3e-3", "tab:brown"),
                                ("warm500_lr3e-3", "500-step warm-up, 3e-3", "tab:pink"),
                                ("torchinit_lr3e-4", "the best public version's settings", "tab:olive"),
                                ("base", "no warm-up, 1e-3", "tab:cyan")):
        epochs, errors = sweep_curve(os.path.join(SWEEP, name + ".log"))
        axes[0].plot(epochs, errors, ":", color=colour, label=f"GPU sweep (JAX): {label}")
    axes[0].plot(list(REFERENCE_M2_ALONE), [100 - a for a in REFERENCE_M2_ALONE.values()], "k--", marker="x",
                 label="best public version (PyTorch), its log")
    axes[0].axhline(11.97, color="grey", linestyle=":", label="paper: 11.97%")
    axes[0].set(ylabel="test error (%)", ylim=(0, 100), title="M2 alone on pixels, 100 labels, seed 0")
    axes[1].axhline(math.log(10), color="grey", linestyle=":", label="uniform q: log 10")
    axes[1].set(ylabel="nats", ylim=(0, 2.5), title="mean entropy of q(y|x), validation images")
    axes[2].axhline(90, color="grey", linestyle=":", label="chance: 90%")
    axes[2].set(ylabel="validation error (%)", ylim=(0, 100), title="generative classification argmax_y L(x, y)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    save(fig, path)


def sweep_curve(path):
    """(epochs, test error %) of a docs/m2_sweep log, whose lines read 'epoch   E | ...s | valid V test T | ...'."""
    rows = [line.split("|") for line in open(path) if line.startswith("epoch")]
    rows = [r for r in rows if int(r[0].split()[1]) > 0]  # the log-scaled axes start at epoch 1
    return [int(r[0].split()[1]) for r in rows], [float(r[2].split()[3]) for r in rows]


def table1_figure(cells, path):
    """Table 1's runs (cells as training.table1_cells gives them): test error against epoch, a panel
    per N, a line per run that has a log, coloured by model and recipe, beside the paper's M1+M2."""
    colors = {("m1m2", "fast"): "tab:blue", ("m1m2", "authors"): "tab:orange",
              ("m2", "fast"): "tab:green", ("m2", "authors"): "tab:red"}
    fig, axes = plt.subplots(1, len(LABELS), figsize=(4 * len(LABELS), 3.6), sharey=True)
    for ax, n in zip(axes, LABELS):
        named = set()
        for cell in cells:
            log = cell["stem"] + ".log"
            if cell["labels"] != n or not os.path.exists(log):
                continue
            rows = read_log(log)
            key = (cell["model"], cell["recipe"])
            label = None if key in named else f"{'M1+M2' if key[0] == 'm1m2' else 'M2'}, {key[1]}"
            named.add(key)
            ax.plot([r["epoch"] for r in rows], [100 * r["test err"] for r in rows], color=colors[key],
                    alpha=0.8, label=label)
        ax.axhline(float(PAPER[("m1m2", n)].split()[0]), color="grey", linestyle="--", linewidth=1,
                   label="paper, M1+M2")
        if not named:
            ax.text(0.5, 0.5, "not yet run", transform=ax.transAxes, ha="center", color="grey")
        ax.set_title(f"N = {n}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test error (%)")
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks([2, 3, 5, 10, 20, 50], ["2", "3", "5", "10", "20", "50"])
    save(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "docs"), help="folder for the figures (default docs/)")
    args = p.parse_args(argv)
    recipes_figure(os.path.join(args.out, "m1m2_recipes.png"))
    m2_alone_figure(os.path.join(args.out, "m2_alone.png"))
    print(recipes_table())


if __name__ == "__main__":
    run_cli(main)
