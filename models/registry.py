"""The registry of models: each model's Spec, the built-in ones registered below from their recipes."""
import dataclasses
import importlib
import os
import types

from ssdgm.models import ModelError, recipes

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")  # the shipped ones


def frozen(mapping):
    """A read-only view of a copy of mapping."""
    return types.MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True)
class Spec:
    """What everything outside the model's own code needs to know of it.

    name: its --model; title: its name in tables ("M1+M2"); what: what its weights are, for messages;
    module: the import path of its code; reads: "pixels" or "features" (M1's); folder: its folder of
    weights/ and temp/; groups: the groups of settings it reads (training/settings.py); defaults: its
    settings where they differ from the declared defaults (they make its default recipe); recipes: each
    recipe's settings where they differ from the defaults, the first the default recipe; by_labels:
    {(recipe or None for all, N): settings} at N labels; paper, best_public: {N: test error text} for
    Table 1; seeds: {N: labelled splits} it is run on there; draws: the --labels and --recipe of the
    weights run_analogy.py draws with, for a model it can draw; semi_supervised: trained by train_M2.py.
    """
    name: str
    title: str
    what: str
    module: str
    reads: str
    folder: str
    groups: tuple
    defaults: types.MappingProxyType
    recipes: types.MappingProxyType
    by_labels: types.MappingProxyType = dataclasses.field(default_factory=lambda: frozen({}))
    paper: types.MappingProxyType = dataclasses.field(default_factory=lambda: frozen({}))
    best_public: types.MappingProxyType = dataclasses.field(default_factory=lambda: frozen({}))
    seeds: types.MappingProxyType = dataclasses.field(default_factory=lambda: frozen({}))
    draws: types.MappingProxyType = None
    semi_supervised: bool = True

    @property
    def default_recipe(self):
        return next(iter(self.recipes))

    def code(self):
        """The model's module (TensorFlow loads with it)."""
        return importlib.import_module(self.module)

    def weights_name(self, recipe=None, data_prefix="", labels=None, seed=None, authors_leak=False):
        """The name of a run's weights (without .npz): '<data>m1[_<recipe>]' for M1,
        '<data><model>_labels<N>_seed<S>[_<recipe>][_authors_leak]' for the others; the recipe only when it
        is not the model's default."""
        recipe_part = "" if recipe in (None, self.default_recipe) else "_" + recipe
        if not self.semi_supervised:
            return f"{data_prefix}{self.name}{recipe_part}"
        return f"{data_prefix}{self.name}_labels{labels}_seed{seed}{recipe_part}" + ("_authors_leak" if authors_leak else "")

    def shipped(self, *name):
        """The path of the shipped weights of that name (weights_name's arguments) under weights/."""
        return os.path.join(WEIGHTS, self.folder, self.weights_name(*name) + ".npz")


SPECS = {}


def register(spec):
    """Adds a model (or replaces the one of its name) to the registry."""
    SPECS[spec.name] = spec
    return spec


def get(name):
    """The Spec named name; ModelError if there is none."""
    if name not in SPECS:
        raise ModelError(f"no model {name!r}: the models are {', '.join(SPECS)}")
    return SPECS[name]


def semi_supervised():
    """The names of the models train_M2.py trains."""
    return [name for name, spec in SPECS.items() if spec.semi_supervised]


def kind_of(config):
    """The name of the model a weights file's config describes, or '' for none here."""
    for spec in SPECS.values():
        name = spec.code().kind_of(config)
        if name:
            return name
    return ""


def describe(kind):
    """What weights of the model `kind` are, for a message: 'M1 (train_M1.py)', 'M1+M2 (--model m1m2)'."""
    if kind not in SPECS:
        return "of no model here"
    spec = SPECS[kind]
    return f"{spec.what} ({'--model ' + kind if spec.semi_supervised else 'train_M1.py'})"


def check_kind(path, config, wanted):
    """ModelError unless the weights' config is of one of the models `wanted`."""
    kind = kind_of(config)
    if kind not in wanted:
        raise ModelError(f"{path}: these weights are {describe(kind)}, not {' or '.join(describe(k) for k in wanted)}")


def builtin(name, title, what, module, reads, folder, groups, **fields):
    """A built-in model's Spec, its settings from models/recipes.py."""
    return register(Spec(name, title, what, module, reads, folder, groups, frozen(recipes.DEFAULTS[name]),
                         frozen(recipes.RECIPES[name]), frozen(recipes.BY_LABELS.get(name, {})),
                         **{k: frozen(v) if isinstance(v, dict) else v for k, v in fields.items()}))


# The paper's Table 1 (for ADGM and SDGM their own paper's) and the best public version (PyTorch, one
# seed), for comparison only; five labelled splits at N=100, where the split moves the error most.
TABLE_SEEDS = {100: (0, 1, 2, 3, 4), 600: (0, 1, 2), 1000: (0, 1, 2), 3000: (0, 1, 2)}
builtin("m1", "M1", "M1", "ssdgm.models.m1", "pixels", "M1", ("run", "m1", "likelihood"), semi_supervised=False)
builtin("m1m2", "M1+M2", "M1+M2", "ssdgm.models.m2", "features", "M2", ("run", "m2"),
        paper={100: "3.33 ± 0.14", 600: "2.59 ± 0.05", 1000: "2.40 ± 0.02", 3000: "2.18 ± 0.04"},
        best_public={100: "2.80", 600: "2.35", 1000: "2.45", 3000: "2.44"}, seeds=TABLE_SEEDS,
        draws={"labels": 100, "recipe": "fast"})
builtin("m2", "M2", "M2 on pixels", "ssdgm.models.m2", "pixels", "M2", ("run", "m2", "likelihood"),
        paper={100: "11.97 ± 1.71", 600: "4.94 ± 0.13", 1000: "3.60 ± 0.56", 3000: "3.92 ± 0.63"},
        best_public={100: "7.15"}, seeds=TABLE_SEEDS, draws={"labels": "all", "recipe": "authors", "extra": " --epochs 400"})
builtin("adgm", "ADGM", "ADGM", "ssdgm.models.adgm", "pixels", "ADGM", ("run", "m2", "auxiliary", "first_code"),
        paper={100: "0.96 ± 0.02 †"}, seeds={100: (0, 1, 2)})
builtin("sdgm", "SDGM", "SDGM", "ssdgm.models.adgm", "pixels", "ADGM", ("run", "m2", "auxiliary"),
        paper={100: "1.32 ± 0.07"}, seeds={100: (0, 1, 2)})
DEFAULT = "m1m2"  # the model train_M2.py trains and evaluates without --model
