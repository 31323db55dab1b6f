"""Every setting of a run, declared once: its name, group, type, default and help. The flags of the
training scripts, which flags a model takes and a run's resolved settings come from here and from each
model's Spec (models/registry.py, which also names its weights) and recipes (models/recipes.py).

A run's settings are the declared defaults of the groups its model reads, then its model's defaults,
its recipe's, those that depend on its number of labels N, and last the flags given (`resolve`). A new
setting is its declaration here, its values in the recipes and its use.
"""
import dataclasses
import os

from ssdgm.data import images
from ssdgm.models.registry import SPECS, frozen
from ssdgm.training.cli import UserError, count, number, positive_float, positive_int

REQUIRED = object()  # a setting every model of its group must give


@dataclasses.dataclass(frozen=True)
class Setting:
    """name: as in the settings and records (the flag is --name with dashes); group: which models read it
    (a Spec's groups); help: None for a setting that only recipes set; implies: settings it sets when
    true; needs: a setting that must be true beside it."""
    name: str
    group: str
    default: object = REQUIRED
    help: str = None
    type: object = None
    nargs: str = None
    choices: tuple = None
    metavar: str = None
    implies: tuple = ()
    needs: str = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def switch(self):
        return self.type is bool


SETTINGS = (
    Setting("epochs", "run", help="epochs in all", type=positive_int),
    Setting("lr", "run", help="Adam's peak learning rate", type=positive_float),
    Setting("lr_decay_epochs", "run", 0, "anneal the rate linearly towards 0 over the last K epochs (at most "
            "--epochs); a schedule, so it may change when resuming", count),
    Setting("ema", "run", 0.0, "momentum per step of a moving average of the weights, which is evaluated, chosen on "
            "and saved instead of the last weights (0: none)", number(float, 0.0, 0.999999, "a number in [0, 0.999999]")),
    Setting("hidden", "run", help="hidden layer sizes of each MLP", type=positive_int, nargs="+"),
    Setting("z_dim", "run", help="latent dimensions", type=positive_int),
    Setting("eval_every", "run", 10, "epochs between evaluations (the authors' 10)", positive_int),
    Setting("rng", "run", "threefry"),  # faster than Philox under XLA on a CPU (docs/speed.md)
    Setting("batch_size", "m1", help="minibatch size", type=positive_int),
    Setting("init", "m1", "code", "code: W~N(0,1/fan_in), b~N(0,1e-6), as the authors' code; paper: W~N(0,1e-6), b=0",
            choices=("code", "paper")),
    Setting("prior_sd", "m1", 1.0, "standard deviation of the Gaussian prior on every weight; a smaller one is a "
            "stronger L2 decay", positive_float),
    Setting("pca", "m1", None, "M1 reads the whitened PCA components of the grey values, fitted on the first 10,000 "
            "training images, as the paper for SVHN (K = 600 components) and NORB (K = 0.999 of the variance); "
            "with --likelihood gaussian", positive_float, metavar="K"),
    Setting("likelihood", "likelihood", "bernoulli", "p(x|.) on pixels: bernoulli, on the grey values binarised "
            "afresh; gaussian, on the values themselves, for continuous data", choices=("bernoulli", "gaussian")),
    Setting("alpha", "m2", 0.1, "classification weight: beta = alpha * N_total / N_labelled",
            number(float, 0.0, 1e6, "a number in [0, 1e6]")),
    Setting("batches", "m2", 200, "minibatches per epoch, at most N (100 for N=100, else 200, as the authors)",
            positive_int),
    Setting("warmup_steps", "m2", 0, "full-batch Adam steps on the labelled part of the objective alone, L(x, y) + "
            "beta log q(y|x) over the labelled images, before the first epoch of a run with unlabelled images", count),
    Setting("warmup_lr", "m2", 1e-3),
    Setting("labelled_per_batch", "auxiliary", 100),  # all 100 labelled images in every minibatch, as the authors
    Setting("samples", "auxiliary", 1, "draws of (a, z) per image in a training step", positive_int),
    Setting("a_dim", "auxiliary", 100),
    Setting("activation", "auxiliary", "relu"),
    Setting("clip_norm", "auxiliary", 5.0),
    Setting("lr_step_every", "auxiliary", 0),  # the rate times lr_step_factor every this many epochs
    Setting("lr_step_factor", "auxiliary", 1.0),
    Setting("fixed_q_a", "auxiliary", False, "keep q(a|x) at its random initial weights, as the ADGM authors' "
            "first code", bool),
    Setting("batchnorm", "auxiliary", False, "batch normalisation in every hidden layer, as the auxiliary models' "
            "authors' later code", bool),
    Setting("first_code", "first_code", False, "the ADGM authors' first released code's model: q(a|x) at its "
            "initial weights, q(z|y, x) without a, p(a) = N(0, I) for p(a|x, y, z)", bool, implies=("fixed_q_a",)),
    Setting("authors_leak", "first_code", False, "the ADGM authors' first code's computation, which leaks labels: "
            "the validation images in the unlabelled pool, that pool in class order and its minibatches in a fixed "
            "order, and their average over draws that mixes images (for showing the leak, never a result: its "
            "weights stay in --out)", bool, needs="first_code"),
)
BY_NAME = {s.name: s for s in SETTINGS}
# Settings that may change when a run resumes: the schedule, not what is being trained.
SCHEDULE = ("epochs", "lr_decay_epochs", "lr_step_every", "lr_step_factor", "eval_every")


def takers(setting, specs):
    """The names of the models among specs that read the setting."""
    return [s.name for s in specs if setting.group in s.groups]


def add_flags(parser, specs):
    """A flag for each setting with a help that a model of specs reads; unset, it is None."""
    for setting in SETTINGS:
        names = takers(setting, specs)
        if setting.help is None or not names:
            continue
        scope = "" if len(names) == len(specs) else f"; {', '.join(names)}"
        text = f"{setting.help} (default: the recipe's{scope})"
        if setting.switch:
            parser.add_argument(setting.flag, dest=setting.name, action="store_const", const=True, help=text)
        else:
            parser.add_argument(setting.flag, dest=setting.name, type=setting.type, nargs=setting.nargs,
                                choices=setting.choices, metavar=setting.metavar, help=text)


def given(args):
    """The settings given as flags: {name: value}."""
    return {s.name: getattr(args, s.name) for s in SETTINGS if getattr(args, s.name, None) is not None}


def recipe_names(specs):
    """Every recipe of the models specs, once each, in order."""
    return list(dict.fromkeys(r for s in specs for r in s.recipes))


def identity(seed, subset, data_path):
    """What a run's record holds beside its settings: its seed, its subset and, for data other than
    MNIST, the name of the file."""
    return {"seed": seed, "subset": subset, **({"data": os.path.basename(data_path)} if images.prefix(data_path) else {})}


def resolve(spec, recipe, flags, labels=None, n_train=None, run=None):
    """The run's settings, read-only: see the module's docstring. recipe None is the model's default;
    flags: `given`; labels: 'all' or a number N (for a semi-supervised model), with n_train training images;
    run: `identity`, added as it is.

    Only --epochs given cuts the recipe's annealing to the epochs (short trial runs). The minibatches
    are at most N (--batches above N is an error) unless each holds its own labelled images
    (labelled_per_batch), and with every label known there is no warm-up (no unlabelled part)."""
    recipe = recipe or spec.default_recipe
    if recipe not in spec.recipes:
        raise UserError(f"--recipe {recipe}: {spec.name} has the recipes {', '.join(spec.recipes)}")
    for name in flags:
        if BY_NAME[name].group not in spec.groups:
            others = ", ".join(takers(BY_NAME[name], [s for s in SPECS.values() if s.semi_supervised == spec.semi_supervised]))
            raise UserError(f"{BY_NAME[name].flag} is not a setting of {spec.what}: {others} read it")
    settings = {s.name: s.default for s in SETTINGS if s.group in spec.groups}
    for layer in (spec.defaults, spec.recipes[recipe], spec.by_labels.get((None, labels), {}),
                  spec.by_labels.get((recipe, labels), {}), flags):
        settings.update(layer)
    for name, value in list(settings.items()):
        setting = BY_NAME[name]
        if value is REQUIRED:
            raise ValueError(f"model {spec.name} gives no value of the setting {name}")
        if value is True and setting.needs and not settings[setting.needs]:
            raise UserError(f"{setting.flag} needs {BY_NAME[setting.needs].flag}: add it")
        if value is True:
            settings.update({implied: True for implied in setting.implies})
    settings.update(model=spec.name, recipe=recipe)
    if "lr_decay_epochs" not in flags:
        settings["lr_decay_epochs"] = min(settings["lr_decay_epochs"], settings["epochs"])
    if settings["lr_decay_epochs"] > settings["epochs"]:
        raise UserError("--lr-decay-epochs must be at most --epochs")
    if labels is not None:
        n_labels = n_train if labels == "all" else labels
        settings["labels"] = n_labels
        if "batches" in settings and not settings.get("labelled_per_batch"):
            if flags.get("batches", 0) > n_labels:
                raise UserError(f"--batches {flags['batches']} exceeds the {n_labels} labelled images: "
                                "each minibatch holds at least one")
            settings["batches"] = min(settings["batches"], n_labels)
        if n_labels == n_train and "warmup_steps" in settings:
            if flags.get("warmup_steps"):
                raise UserError("--warmup-steps: with every label known there is no unlabelled part to warm up for")
            settings["warmup_steps"] = 0
    return frozen({**settings, **(run or {})})
