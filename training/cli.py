"""The command line of every script: one error path, checked flag types, the flags of a run."""
import argparse
import dataclasses
import math
import os
import sys
import types

from ssdgm import UserError

MAX_SEED = 2 ** 32 - 1
CHECKPOINT_MINUTES = 3.0


class Stopped(Exception):
    """A run stopped by a signal after saving its place: one line, and the signal's conventional
    exit status (128 + its number: 143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage block; one line says the same and points to --help.
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def run_cli(main):
    """Calls main(); a UserError or an OSError (a path that cannot be read or written) becomes one
    line on stderr and exit code 2, a run Stopped by a signal one line and its status."""
    try:
        main()
    except Stopped as e:
        sys.stderr.write(f"stopped by {e}\n")
        sys.exit(e.status)
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    except OSError as e:
        sys.stderr.write(f"error: {str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the last checkpoint and the best weights are intact\n")
        sys.exit(130)


def number(kind, low, high, what):
    """An argparse type: text read as kind (int or float) and required to lie in [low, high]."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan  # fails the range test below
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


seed_value = number(int, 0, MAX_SEED, f"an integer in [0, {MAX_SEED}]")
positive_int = number(int, 1, math.inf, "an integer of at least 1")
count = number(int, 0, math.inf, "an integer of at least 0")
positive_float = number(float, math.ulp(0.0), sys.float_info.max, "a finite number above 0")


@dataclasses.dataclass(frozen=True)
class Job:
    """A script's command resolved: the model (a models.registry.Spec) and its read-only settings
    (training.settings.resolve, with seed, subset and data), and where it reads and writes; gif: for
    train_M1.py, a frames file to draw as a GIF instead."""
    spec: object
    settings: types.MappingProxyType
    train: bool
    data: str
    out: str
    weights: str
    threads: int = 0
    ckpt_minutes: float = CHECKPOINT_MINUTES
    m1_weights: str = None
    gif: str = None


def check_training(args, flags):
    """Refuses settings (flags, training.settings.given) and --ckpt-minutes given without -train, which
    evaluation would ignore: the weights file holds the settings of the model it evaluates."""
    named = list(flags) + (["ckpt_minutes"] if args.ckpt_minutes is not None else [])
    if named and not args.train:
        raise UserError(f"--{named[0].replace('_', '-')} is a training setting: add -train, or leave it out to "
                        "evaluate (the weights file holds the settings of its model)")


def departures(flags, subset, others=()):
    """What makes a run depart from its recipe: the settings given but --eval-every (which changes what is
    seen of a run, not the run), --subset, and `others`, the names of other flags given that change it."""
    return [name for name in flags if name != "eval_every"] + (["subset"] if subset else []) + list(others)


def weights_path(args, shipped, run_folder, shipped_folder, departed):
    """Where a run writes (with -train) or reads its weights. Reading: --weights, else `shipped`.
    Training: --ship writes `shipped` (refused for a run that departs from its recipe: --subset,
    --epochs, any setting); --weights is the file named (refused under shipped_folder for such a run);
    else the run folder keeps them, so that no trial replaces what is shipped. departed: `departures`."""
    if not args.train:
        if args.ship:
            raise UserError("--ship is for training: add -train (without it the shipped weights are evaluated)")
        return args.weights or shipped
    if args.ship:
        if args.weights:
            raise UserError(f"--ship writes {shipped}: leave out --weights")
        if departed:
            raise UserError(f"--ship: --{departed[0].replace('_', '-')} departs from the recipe, so this run "
                            "cannot replace the shipped weights; leave out --ship (its weights stay in its run folder)")
        return shipped
    path = args.weights or os.path.join(run_folder, os.path.basename(shipped))
    inside = os.path.commonpath([os.path.abspath(path), os.path.abspath(shipped_folder)]) == os.path.abspath(shipped_folder)
    if departed and inside:
        raise UserError(f"--weights {path} is among the shipped weights, and --{departed[0].replace('_', '-')} "
                        "departs from the recipe: write this run's weights elsewhere")
    return path


def run_flags(data_path, recipe_names):
    """The flags of a run that both training scripts take, as a parent parser; recipe_names: the
    script's recipes. The settings' flags are training.settings.add_flags'."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-train", "--train", action="store_true",
                   help="train (resuming from --out if a checkpoint is there); without it, evaluate --weights")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seeds the labelled subset, minibatches, initial weights and noise (default 0)")
    p.add_argument("--recipe", choices=recipe_names,
                   help="fast: this project's schedule; authors: the authors' constant rate and epochs; styles "
                        "(M2 on pixels, every label): a 2-D z for the grid of handwriting styles (default: the "
                        "recipe of the shipped weights, fast for every model); a flag given overrides the "
                        "recipe's setting")
    p.add_argument("--ckpt-minutes", type=positive_float,
                   help=f"minutes between checkpoints, besides one at every evaluation (default {CHECKPOINT_MINUTES:g})")
    p.add_argument("--threads", type=count, default=0,
                   help="CPU threads for TensorFlow (default 0: all); see docs/speed.md for two runs of one each")
    p.add_argument("--out", help="run folder: checkpoints, logs, metrics, TensorBoard scalars, and the "
                                 "weights unless --ship or --weights says otherwise (default under temp/)")
    p.add_argument("--weights", help="best-on-validation weights file, written when training (default: in the "
                                     "run folder), read otherwise (default: the shipped one under weights/)")
    p.add_argument("--ship", action="store_true",
                   help="write the weights, record, log and metrics under weights/, in place of the shipped ones "
                        "that the same flags without -train evaluate; only for a run of its recipe as it is")
    p.add_argument("--data", default=data_path, help="the images, one .npz (default: MNIST; the format in data/README.md)")
    p.add_argument("--subset", type=count, default=0,
                   help="use only the first N images of each split (quick checks; 0 = all)")
    return p
