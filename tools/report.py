"""Reads runs' metrics and draws the experiment figures from them, without TensorFlow.

    python tools/report.py                        # docs/m1m2_recipes.png, m2_alone.png, adgm.png, adgm_leak.png, the recipes' table
    python tools/report.py --convert train.log ...  # <stem>.metrics.jsonl beside each log of the older format

A run writes one JSON row per evaluation to `metrics.jsonl` in its folder, copied beside its weights as
`<stem>.metrics.jsonl`; this script and table1.py read only those rows. Which runs each figure draws
is data: docs/experiments/manifest.json. Logs of runs made before the rows existed are converted
once with --convert (tests/test_report.py checks that every shipped conversion reproduces its record).
"""
import math
import os
import re

import matplotlib.ticker
import numpy as np

from ssdgm.files import metrics_path, read_json, read_jsonl, write_jsonl
from ssdgm.training.cli import ArgumentParser, UserError, run_cli
from ssdgm.training.figures import save_figure, subplots

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(HERE, "docs", "experiments", "manifest.json")
# A log field's name -> its metrics key; a value logged in % is stored as a fraction.
LOG_NAMES = {"train bound": "train_bound", "rec": "train_reconstruction", "KL": "train_kl",
             "valid": "valid_bound", "test": "test_bound", "active": "active_units",
             "L(x,y)": "train_labelled_bound", "U(x)": "train_unlabelled_bound", "log q(y|x)": "train_log_qy",
             "valid L(x,y)": "valid_labelled_bound", "valid err": "valid_error", "test err": "test_error",
             "entropy": "valid_entropy", "gen err": "valid_generative_error", "a spread": "valid_a_spread", "lr": "lr"}
TRAIN_TERMS = ("train_bound", "train_reconstruction", "train_kl", "train_labelled_bound", "train_unlabelled_bound",
               "train_log_qy", "lr")


CLASSIFIER = ("epoch", "minutes", "test_error")  # what every figure here draws of a row


def read_metrics(path, needs=CLASSIFIER):
    """The rows of a metrics file (one dict per evaluation, the warm-up's as epoch 0); UserError for
    a row without one of the keys `needs`."""
    rows = read_jsonl(path)
    for i, row in enumerate(rows, 1):
        missing = [k for k in needs if not isinstance(row, dict) or k not in row]
        if missing:
            raise UserError(f"{path}: row {i} has no {missing[0]}")
    return rows


def log_fields(text):
    """{metrics key: value} of the fields of a log line's part after 'epoch E | ' (names as LOG_NAMES)."""
    fields = {}
    for part in text.replace(" (rec ", " | rec ").replace(", KL ", " | KL ").split(" | "):
        part = part.strip()
        if part.endswith(")") and part.count(")") > part.count("("):
            part = part[:-1]
        match = re.fullmatch(r"(.+?) +(-?\d[\d.]*(?:e[-+]?\d+)?)(%?)", part)
        if match and match.group(1) in LOG_NAMES:
            value = float(match.group(2))
            fields[LOG_NAMES[match.group(1)]] = round(value / 100, 6) if match.group(3) else value
    if "active_units" in fields:
        fields["active_units"] = int(fields["active_units"])
    return fields


def metrics_from_log(path):
    """The metrics rows of a train.log written before runs wrote metrics.jsonl: an 'epoch E | ...'
    or warm-up line each (the warm-up as epoch 0), the unaveraged weights' line below it merged in as
    unaveraged_*. Values have the log's precision."""
    rows = []
    for line in open(path):
        if line.startswith("epoch") or line.startswith("warm-up:"):
            head, body = line.rstrip().split(" | ", 1)
            row = {"epoch": int(head.split()[1]) if head.startswith("epoch") else 0,
                   "minutes": float(re.search(r"([\d.]+) min", body).group(1)), **log_fields(body)}
            if head.startswith("epoch"):
                row["best"] = body.endswith("| best")
            rows.append(row)
        elif line.startswith("  unaveraged weights: ") and rows:
            rows[-1].update({f"unaveraged_{k}": v for k, v in log_fields(line.split(": ", 1)[1]).items()
                             if k not in TRAIN_TERMS})
    return rows


def convert(logs):
    """Writes <stem>.metrics.jsonl beside each log (train.log: metrics.jsonl beside it)."""
    for log in logs:
        stem = os.path.splitext(log)[0]
        path = os.path.join(os.path.dirname(log), "metrics.jsonl") if os.path.basename(stem) == "train" \
            else metrics_path(stem)
        write_jsonl(path, metrics_from_log(log))
        print(path)


def log_axes(ax, xlabel):
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(True, which="both", alpha=0.3)


def recipes_figure(spec, path):
    """M1+M2, N=100: test error against epochs and against minutes of one core, one colour per run kind."""
    fig, axes = subplots(1, 2, figsize=(11, 4), sharey=True)
    for kind in spec["runs"]:
        for i, rows in enumerate(read_metrics(os.path.join(HERE, p)) for p in kind["metrics"]):
            rows = [r for r in rows if r["epoch"] > 0]
            error = [100 * r["test_error"] for r in rows]
            label = kind["label"] if i == 0 else None
            axes[0].plot([r["epoch"] for r in rows], error, color=kind["color"], alpha=0.8, label=label)
            axes[1].plot([r["minutes"] for r in rows], error, color=kind["color"], alpha=0.8, label=label)
    for ax, xlabel in zip(axes, ("epoch", "minutes of training (one core each)")):
        ax.axhline(spec["paper"], color="grey", linestyle="--", linewidth=1, label=f"paper: {spec['paper']}%")
        log_axes(ax, xlabel)
        ax.set_yscale("log")
    axes[0].set_ylabel("test error (%)")
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks([2.5, 3, 4, 5, 7, 10, 20, 50], ["2.5", "3", "4", "5", "7", "10", "20", "50"])
    # Below the plots: inside, the legend hid the early curves.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(spec["title"])
    save_figure(fig, path)


def recipes_table(spec):
    """Markdown: per run kind and seed, test error at fixed epochs and minutes, epochs and minutes to
    the paper's figure, and the weights chosen on validation; then mean and std over the seeds."""
    budgets_epochs, budgets_minutes = (100, 200, 300, 450), (15, 30, 45, 60)
    head = ([f"test error at epoch {e}" for e in budgets_epochs] + [f"at {m} min" for m in budgets_minutes]
            + [f"first test error <= {spec['paper']}%: epoch (min)", "whole run: epochs, min",
               "chosen on validation: epoch, min, test error"])
    lines = ["| run kind, seed | " + " | ".join(head) + " |", "| --- " * (len(head) + 1) + "|"]
    for kind in spec["runs"]:
        chosen = []
        for path in kind["metrics"]:
            rows = [r for r in read_metrics(os.path.join(HERE, path)) if r["epoch"] > 0]
            seed = re.search(r"seed(\d+)", path).group(1)

            def at(key, value):
                before = [r for r in rows if r[key] <= value]
                return f"{100 * before[-1]['test_error']:.2f}%" if before and rows[-1][key] >= value else ""
            reached = [r for r in rows if r["test_error"] <= spec["paper"] / 100]
            best = min(rows, key=lambda r: (r["valid_error"], r["epoch"]))
            chosen.append(best["test_error"])
            cells = ([at("epoch", e) for e in budgets_epochs] + [at("minutes", m) for m in budgets_minutes]
                     + [f"{reached[0]['epoch']} ({reached[0]['minutes']:.0f})" if reached else "not reached",
                        f"{rows[-1]['epoch']}, {rows[-1]['minutes']:.0f}",
                        f"{best['epoch']}, {best['minutes']:.0f}, {100 * best['test_error']:.2f}%"])
            lines.append(f"| {kind['label']}, {seed} | " + " | ".join(cells) + " |")
        if len(chosen) > 1:
            mean, std = 100 * np.mean(chosen), 100 * np.std(chosen, ddof=1)
            lines.append(f"| {kind['label']}: mean ± std of the chosen | " + " | " * (len(head) - 1)
                         + f"**{mean:.2f}% ± {std:.2f}** |")
    return "\n".join(lines)


def m2_alone_figure(spec, path):
    """M2 alone on pixels, N=100: test error by epoch of our runs, the GPU sweep's and the best public
    version's (left); where rows have them, the entropy of q(y|x) (middle) and the error of the
    generative classification argmax_y L(x, y) (right), beside an M1+M2 run's for contrast."""
    fig, axes = subplots(1, 3, figsize=(16, 4.2))
    for run in spec["runs"]:
        rows = [r for r in read_metrics(os.path.join(HERE, run["metrics"])) if r["epoch"] > 0]
        epochs = [r["epoch"] for r in rows]
        if run.get("contrast"):
            style = {"color": "tab:gray", "linestyle": "-."}
        else:
            line, = axes[0].plot(epochs, [100 * r["test_error"] for r in rows], marker=".", label=run["label"])
            style = {"color": line.get_color()}
        diagnosed = [r for r in rows if "valid_entropy" in r]
        if diagnosed:
            epochs = [r["epoch"] for r in diagnosed]
            axes[1].plot(epochs, [r["valid_entropy"] for r in diagnosed], marker=".", label=run["label"], **style)
            axes[2].plot(epochs, [100 * r["valid_generative_error"] for r in diagnosed], marker=".",
                         label=run["label"], **style)
    for run in spec["sweep"]:
        rows = [r for r in read_metrics(os.path.join(HERE, run["metrics"])) if r["epoch"] > 0]
        axes[0].plot([r["epoch"] for r in rows], [100 * r["test_error"] for r in rows], ":", color=run["color"],
                     label=f"GPU sweep (JAX): {run['label']}")
    reference = spec["reference"]
    axes[0].plot([int(e) for e in reference["test_accuracy"]], [100 - a for a in reference["test_accuracy"].values()],
                 "k--", marker="x", label=reference["label"])
    axes[0].axhline(spec["paper"], color="grey", linestyle=":", label=f"paper: {spec['paper']}%")
    axes[0].set(ylabel="test error (%)", ylim=(0, 100), title="M2 alone on pixels, 100 labels, seed 0")
    axes[1].axhline(math.log(10), color="grey", linestyle=":", label="uniform q: log 10")
    axes[1].set(ylabel="nats", ylim=(0, 2.5), title="mean entropy of q(y|x), validation images")
    axes[2].axhline(90, color="grey", linestyle=":", label="chance: 90%")
    axes[2].set(ylabel="validation error (%)", ylim=(0, 100), title="generative classification argmax_y L(x, y)")
    for ax in axes:
        log_axes(ax, "epoch")
        ax.legend(fontsize=6)
    save_figure(fig, path)


def adgm_figure(spec, path):
    """ADGM and SDGM, N=100: test error against the work done (passes over 50,000 images with one draw
    of the latent variables each: a run's `work_per_epoch` in the manifest) beside the authors' log,
    and against minutes of the 2-core machine."""
    fig, axes = subplots(1, 2, figsize=(11, 4), sharey=True)
    for run in spec["runs"]:
        rows = [r for r in read_metrics(os.path.join(HERE, run["metrics"])) if r["epoch"] > 0]
        error = [100 * r["test_error"] for r in rows]
        axes[0].plot([r["epoch"] * run["work_per_epoch"] for r in rows], error, marker=".", label=run["label"])
        axes[1].plot([r["minutes"] for r in rows], error, marker=".", label=run["label"])
    reference = spec["reference"]
    axes[0].plot([int(e) * reference["work_per_epoch"] for e in reference["test_error"]],
                 list(reference["test_error"].values()), "k--", marker="x", label=reference["label"])
    for ax, xlabel in zip(axes, ("work: passes over 50,000 images, one draw each", "minutes of the 2-core machine")):
        ax.axhline(spec["paper"], color="grey", linestyle=":", label=f"paper: {spec['paper']}%")
        log_axes(ax, xlabel)
        ax.set_yscale("log")
    # One legend under both panels: inside either it would hide the curves.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=7, frameon=False)
    axes[0].set_ylabel("test error (%)")
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_yticks([1, 2, 3, 5, 10, 20, 50], ["1", "2", "3", "5", "10", "20", "50"])
    fig.suptitle(spec["title"])
    save_figure(fig, path)


def leak_figure(spec, path):
    """The ADGM authors' computation against the same model without it: for each run and the authors'
    log, the test error and the error on the validation images (in the unlabelled pool where the run
    has them there), against the steps taken, in the authors' epochs of 600 steps."""
    fig, ax = subplots(figsize=(8, 4.5))
    for run in spec["runs"] + [spec["reference"]]:
        rows = ([{"epoch": int(e), "test_error": t / 100, "valid_error": v / 100} for e, (t, v) in run["errors"].items()]
                if "errors" in run else [r for r in read_metrics(os.path.join(HERE, run["metrics"])) if r["epoch"] > 0])
        epochs = [r["epoch"] * run["steps_per_epoch"] / 600 for r in rows]
        line, = ax.plot(epochs, [100 * r["test_error"] for r in rows], marker=".", label=f"{run['label']}: test")
        ax.plot(epochs, [100 * r["valid_error"] for r in rows], "--", color=line.get_color(),
                label=f"{run['label']}: validation ({run['validation']})")
    log_axes(ax, "steps, in the authors' epochs (600 steps of 100 + 100 images)")
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([0.02, 0.1, 0.5, 1, 2, 3, 5, 10, 20], ["0.02", "0.1", "0.5", "1", "2", "3", "5", "10", "20"])
    ax.set_ylabel("error (%)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1, fontsize=7, frameon=False)
    ax.set_title(spec["title"], fontsize=9)
    save_figure(fig, path)


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "docs"), help="folder for the figures (default docs/)")
    p.add_argument("--convert", nargs="+", metavar="LOG",
                   help="only write <stem>.metrics.jsonl beside each train.log-format LOG")
    args = p.parse_args(argv)
    if args.convert:
        convert(args.convert)
        return
    manifest = read_json(MANIFEST)
    recipes_figure(manifest["m1m2_recipes"], os.path.join(args.out, "m1m2_recipes.png"))
    m2_alone_figure(manifest["m2_alone"], os.path.join(args.out, "m2_alone.png"))
    if manifest["adgm"]["runs"]:
        adgm_figure(manifest["adgm"], os.path.join(args.out, "adgm.png"))
    leak_figure(manifest["adgm_leak"], os.path.join(args.out, "adgm_leak.png"))
    print(recipes_table(manifest["m1m2_recipes"]))


if __name__ == "__main__":
    run_cli(main)
