"""The shipped default weights give their records' figures, and the README's Python example runs."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from ssdgm.data import mnist
from ssdgm.files import read_json
from ssdgm.models import m1
from ssdgm.models.trained import load_classifier

# Evaluation on another CPU may round a borderline image the other way: at most one in 10,000.
ONE_IMAGE = 1.01e-4


def test_the_default_m1_gives_its_records_bound_and_active_units():
    record = read_json(os.path.join(ROOT, "weights", "M1", "m1.json"))
    evaluator = m1.Evaluator(m1.load(), mnist.load_splits(), mnist.EVAL_SEED)
    assert evaluator.bound("test")[0] == pytest.approx(record["test_bound"], abs=5e-3)
    assert evaluator.bound("valid")[0] == pytest.approx(record["valid_bound"], abs=5e-3)
    assert evaluator.active() == record["active_units"] == 20


@pytest.mark.parametrize("name", ["m1m2_labels100_seed0", "m2_labels100_seed0"])
def test_the_default_classifiers_give_their_records_errors(name):
    stem = os.path.join(ROOT, "weights", "M2", name)
    record = read_json(stem + ".json")
    classifier = load_classifier(stem + ".npz")
    splits = mnist.load_splits()
    for split in ("valid", "test"):
        x, y = splits[split]
        error = np.mean(classifier.probabilities(x).argmax(axis=1) != y)
        assert error == pytest.approx(record[f"{split}_error"], abs=ONE_IMAGE), split


def test_probabilities_take_bytes_or_grey_values_and_refuse_other_shapes():
    classifier = load_classifier()
    raw = mnist.load_raw()["x_test"][:5]  # uint8 [5, 28, 28]
    p = classifier.probabilities(raw)
    assert p.shape == (5, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(p, classifier.probabilities(raw.reshape(5, 784) / 255.0), atol=1e-6)
    with pytest.raises(ValueError, match="images must be"):
        classifier.probabilities(np.zeros((5, 32, 32)))
    with pytest.raises(ValueError, match="grey values must lie in"):
        classifier.probabilities(np.full((2, 784), 2.0))


def test_the_readme_python_example_runs_from_outside_the_repository_and_prints_the_shipped_error(tmp_path):
    """As a user's own script: from another folder, with the package as the README installs it (the test
    environment's editable install), not the repository on the path."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert 8 <= len(example.strip().splitlines()) <= 14
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=env)
    assert result.returncode == 0, result.stderr
    error = float(re.search(r"test error ([\d.]+)%", result.stdout).group(1))
    assert error == pytest.approx(100 * read_json(os.path.join(ROOT, "weights", "M2", "m1m2_labels100_seed0.json"))
                                  ["test_error"], abs=100 * ONE_IMAGE)


def test_the_readme_is_for_users_short_with_the_two_commands_near_the_top():
    lines = open(os.path.join(ROOT, "README.md")).read().splitlines()
    assert len(lines) <= 200
    commands = [i for i, line in enumerate(lines) if line.strip().startswith("python3 -m venv .venv")]
    assert len(commands) == 2 and commands[-1] < 60
    text = "\n".join(lines)
    assert not re.search(r"\b[Ii]ssue \d+|#\d+\b|\bcommit [0-9a-f]{7}", text)
    assert not re.search(r"unfinished|not yet|still to run|not recorded", text, re.I)
