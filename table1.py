"""The paper's Table 1 (test error of M2 alone and M1+M2 for N = 100, 600, 1000, 3000 labels).

    python table1.py --report                 # the table and docs/table1.png from the shipped results
    python table1.py --jobs 2                 # trains the missing cells, two at a time, then reports
    python table1.py --print-commands         # one training command a line, for parallel or SLURM

Each cell run is one ordinary `train_M2.py -train` command with its own run folder and JSON; this
script only plans, launches and collects (a finished cell is skipped, an unfinished one resumes).
"""
import argparse
import os

from common import UserError, quiet_tensorflow, run_cli

quiet_tensorflow()
import report  # noqa: E402
import training  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=training.MODELS, default=list(training.MODELS), help="models (default both)")
    p.add_argument("--labels", nargs="+", type=int, choices=training.LABELS, default=list(training.LABELS),
                   help="label counts N (default all four)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--recipe", choices=["fast", "authors"], default="fast", help="training recipe (default fast)")
    p.add_argument("--jobs", type=int, default=0, help="train the unfinished cells, K at a time")
    p.add_argument("--print-commands", action="store_true", help="print one training command a line")
    p.add_argument("--command-at", type=int, metavar="I",
                   help="print the I-th command (from 0), as a SLURM array task does with its index")
    p.add_argument("--report", action="store_true", help="write the table into README.md (also after --jobs)")
    args = p.parse_args(argv)
    cells = training.table1_cells(args.models, args.labels, args.seeds, args.recipe)
    if args.print_commands:
        print("\n".join(c["command"] for c in cells))
    if args.command_at is not None:
        if not 0 <= args.command_at < len(cells):
            raise UserError(f"--command-at {args.command_at}: the plan has {len(cells)} commands")
        print(cells[args.command_at]["command"])
    if args.jobs:
        training.run_cells(cells, args.jobs)
    if args.report or args.jobs:
        every = [training.table1_cells(training.MODELS, training.LABELS, args.seeds, r) for r in ("fast", "authors")]
        text = training.table1_markdown(every[0] + every[1])
        training.write_between_markers(text, os.path.join(HERE, "README.md"))
        report.table1_figure(every[0] + every[1], os.path.join(HERE, "docs", "table1.png"))
        print(text)


if __name__ == "__main__":
    run_cli(main)
