"""The model interface and the layout: a model registered from its own module trains and evaluates
through train_M2.py without a line of the project changed; the layers import downwards only."""
import ast
import glob
import os
import textwrap

import pytest
from conftest import ROOT

import train_M2
from ssdgm.models import registry
from ssdgm.training import settings

TOY = textwrap.dedent('''
    """A toy semi-supervised model: logistic regression q(y|x) on the labelled images alone."""
    import numpy as np

    from ssdgm.models.blocks import error_rate, load_model
    from ssdgm.tf import keras, tf

    LOG_FIELDS = {"valid_weight_norm": (lambda model, x: float(tf.norm(model.dense.kernel)), "norm {:5.2f}")}


    class Toy(keras.Model):
        def __init__(self, x_dim, n_labels, toy_units, **kwargs):
            super().__init__(**kwargs)
            self.x_dim, self.n_labels, self.toy_units = x_dim, n_labels, toy_units
            self.dense = keras.layers.Dense(n_labels)
            self.classify(tf.zeros([1, x_dim]))

        def get_config(self):
            return {"x_dim": self.x_dim, "n_labels": self.n_labels, "toy_units": self.toy_units}

        def classify(self, x):
            return self.dense(x)


    def build(name, settings, x_dim, n_classes):
        return Toy(x_dim, n_classes, settings["hidden"][0])


    def train_step(settings, model, optimizer, inputs, labels, rng):
        loc, labels = tf.constant(inputs.train_loc), tf.constant(labels)

        def step(lab, unl):
            with tf.GradientTape() as tape:
                x = inputs.sample(tf.gather(loc, lab), None, rng)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(labels, lab),
                                                                                     model.classify(x)))
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            zero = tf.zeros([])
            return {"loss": loss, "labelled_bound": -loss, "unlabelled_bound": zero, "reconstruction": zero,
                    "kl": zero, "log_qy": -loss}
        return step


    def kind_of(config):
        return "toy" if "toy_units" in config else None


    def load(path, missing_hint, kinds=("toy",)):
        return load_model(Toy, path, missing_hint, kinds)


    def validation_bound(model, x, y, eval_seed):
        return 0.0


    def generative_error_rate(model, x, y, eval_seed):
        return error_rate(model, x, y)
''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_model.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = registry.register(registry.Spec(
        "toy", "Toy", "a toy classifier", "toy_model", "pixels", "TOY", ("run", "m2"),
        registry.frozen({"hidden": [4], "z_dim": 1, "epochs": 2, "lr": 1e-2, "eval_every": 1, "batches": 10}),
        registry.frozen({"quick": {}, "slow": {"epochs": 5}})))
    yield spec
    del registry.SPECS["toy"]


def test_a_model_registered_from_its_own_module_trains_and_evaluates_through_train_M2(toy, tmp_path, capsys):
    out = tmp_path / "run"
    train_M2.main(["-train", "--model", "toy", "--subset", "300", "--labels", "20", "--out", str(out)])
    log = (out / "train.log").read_text()
    assert "epoch    2 |" in log and "norm" in log  # the model's own log field
    weights = out / "toy_labels20_seed0.npz"  # the default recipe leaves the name bare
    assert weights.exists() and not (tmp_path / "TOY").exists()
    capsys.readouterr()
    train_M2.main(["--model", "toy", "--subset", "300", "--weights", str(weights)])
    assert f"{weights}: validation bound L(x,y) 0.00, validation error" in capsys.readouterr().out
    assert settings.resolve(toy, "slow", {})["epochs"] == 5
    with pytest.raises(registry.ModelError, match="these weights are a toy classifier"):
        train_M2.main(["--model", "m2", "--subset", "300", "--weights", str(weights)])


def test_a_setting_a_model_does_not_read_is_refused_with_who_reads_it(toy):
    with pytest.raises(settings.UserError, match="--samples is not a setting of a toy classifier: adgm, sdgm read it"):
        train_M2.parse_args(["-train", "--model", "toy", "--samples", "3"])


def python_files(folder):
    return sorted(glob.glob(os.path.join(ROOT, folder, "*.py")))


def imported(path):
    """The modules a file imports at its top level or inside its functions."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_at_most_five_scripts_at_the_top_and_train_M2_names_no_model_module():
    assert len(python_files("")) <= 5
    tree = ast.parse(open(os.path.join(ROOT, "train_M2.py")).read())
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not named & {"m1", "m2", "adgm", "sdgm", "m1m2", "AuxiliaryDGM", "M2"}
    assert not {m for m in imported(os.path.join(ROOT, "train_M2.py")) if m.startswith("ssdgm.models.")} - {
        "ssdgm.models.registry"}


@pytest.mark.parametrize("folder, allowed", [
    ("data", ("ssdgm.data",)),
    ("models", ("ssdgm.data", "ssdgm.models")),
    ("training", ("ssdgm.data", "ssdgm.models", "ssdgm.training")),
])
def test_a_layer_imports_only_the_layers_below_it(folder, allowed):
    for path in python_files(folder):
        ours = {m for m in imported(path) if m.startswith("ssdgm.")} - {"ssdgm.UserError"}
        upward = {m for m in ours if not m.startswith(allowed + ("ssdgm.files", "ssdgm.tf"))}
        assert not upward, (path, upward)
        assert not imported(path) & {"data", "models", "training", "tools", "cli", "files"}, path
