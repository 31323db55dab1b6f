"""The command line of every script: one error path, checked flag types, the training flags."""
import argparse
import importlib
import math
import os
import sys

MAX_SEED = 2 ** 32 - 1
CHECKPOINT_MINUTES = 3.0
# Flags of both training scripts that only training reads.
TRAINING_ONLY = ("epochs", "lr", "lr_decay_epochs", "ema", "hidden", "z_dim", "eval_every", "ckpt_minutes")


class UserError(Exception):
    """A problem the user can fix (bad flag, missing or corrupt file): one line, exit code 2."""


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


def quiet_tensorflow():
    """Imports TensorFlow with its C++ start-up notices (no GPU found, ...) kept off stderr.

    They are printed before TensorFlow reads TF_CPP_MIN_LOG_LEVEL, so only a redirect hides them;
    an import error still surfaces as the Python exception after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN's batched matrix product crashes (SIGSEGV) on some AVX-512 processors (AMD EPYC, family 26)
    # for a [K, 1, n, d] operand, as every evaluation here has; TensorFlow's own kernels do not.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        importlib.import_module("tensorflow")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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


def check_training_flags(args, only_training):
    """Refuses settings given without -train, which evaluation would ignore (the weights file holds
    the settings of the model it evaluates); fills --ckpt-minutes' default."""
    given = [name for name in only_training if getattr(args, name, None) is not None]
    if given and not args.train:
        raise UserError(f"--{given[0].replace('_', '-')} is a training setting: add -train, or leave it out to "
                        "evaluate (the weights file holds the settings of its model)")
    args.ckpt_minutes = args.ckpt_minutes or CHECKPOINT_MINUTES


# Flags that change neither what is trained nor how: a run given only these is a run of its recipe.
NOT_DEPARTURES = ("train", "seed", "recipe", "threads", "ckpt_minutes", "eval_every", "out", "weights", "ship")


def departures(args, defaults):
    """The flags of args given (not None, and not their default in `defaults`) that make a run depart
    from its recipe: every one but NOT_DEPARTURES and those that name what is run (in defaults)."""
    return [name for name, value in vars(args).items()
            if name not in NOT_DEPARTURES and value is not None and value is not False
            and value != defaults.get(name, None)]


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


def training_flags(data_path, recipe_names):
    """The flags both training scripts take, as a parent parser; recipe_names: the script's recipes.
    A setting left unset (None) is filled from the recipe (recipes.resolve)."""
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
    p.add_argument("--epochs", type=positive_int, help="epochs in all (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, help="Adam's peak learning rate (default: the recipe's)")
    p.add_argument("--lr-decay-epochs", type=count,
                   help="anneal the rate linearly towards 0 over the last K epochs (default: the "
                        "recipe's, at most --epochs); a schedule, so it may change when resuming")
    p.add_argument("--ema", type=number(float, 0.0, 0.999999, "a number in [0, 0.999999]"),
                   help="momentum per step of a moving average of the weights, which is evaluated, chosen "
                        "on and saved instead of the last weights (default: the recipe's; 0, none, in every "
                        "recipe but M1's fast one)")
    p.add_argument("--hidden", type=positive_int, nargs="+", help="hidden layer sizes of each MLP (default: the recipe's)")
    p.add_argument("--z-dim", type=positive_int, help="latent dimensions (default: the recipe's, 50)")
    p.add_argument("--eval-every", type=positive_int,
                   help="epochs between evaluations (default: the recipe's, 10, as the authors)")
    p.add_argument("--ckpt-minutes", type=positive_float,
                   help=f"minutes between checkpoints, besides one at every evaluation (default {CHECKPOINT_MINUTES:g})")
    p.add_argument("--threads", type=count, default=0,
                   help="CPU threads for TensorFlow (default 0: all); two runs of 1 thread each, "
                        "pinned with taskset, train about 30%% more epochs in all than one of 2")
    p.add_argument("--out", help="run folder: checkpoints, logs, metrics, TensorBoard scalars, and the "
                                 "weights unless --ship or --weights says otherwise (default under temp/)")
    p.add_argument("--weights", help="best-on-validation weights file, written when training (default: in the "
                                     "run folder), read otherwise (default: the shipped one under weights/)")
    p.add_argument("--ship", action="store_true",
                   help="write the weights, record, log and metrics under weights/, in place of the shipped ones "
                        "that the same flags without -train evaluate; only for a run of its recipe as it is")
    p.add_argument("--data", default=data_path, help="MNIST .npz file")
    p.add_argument("--subset", type=count, default=0,
                   help="use only the first N images of each split (quick checks; 0 = all)")
    return p
