"""scikit-learn's handwritten digits as an image set of this project's format, and the standard
baselines on its labelled splits.

    python tools/digits.py                       # writes data/digits.npz (the fixed split below)
    python tools/digits.py --baselines           # and the baselines' test errors, 50 and 100 labels, seeds 0-2
    python tools/digits.py --report              # the table of the shipped digits records beside the baselines

The data: `sklearn.datasets.load_digits`, 1,797 images of 8 x 8 grey levels 0-16 (stored as bytes,
level * 255 / 16), ten classes. The split, fixed: 497 test images, 200 validation images and 1,100
training images, each stratified by class (scikit-learn's train_test_split, random_state 0). 1,100
training images divide into minibatches of 50 or 100 labelled images and the rest.

The baselines, on the labelled images of `data.mnist.labelled_split` (the draw train_M2.py makes for
the same --labels and --seed): a support vector machine (RBF kernel, C = 10) and logistic regression
on the labelled images alone, and label spreading (a 7-nearest-neighbour graph, alpha 0.2) over the
labelled and the unlabelled training images. Their records go to docs/experiments/digits/baselines.json.
"""
import json
import os
import sys

import numpy as np

from ssdgm.data import images, mnist
from ssdgm.files import atomic_write, read_json, write_json
from ssdgm.training.cli import ArgumentParser, count, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PATH = os.path.join(ROOT, "data", "digits.npz")
RECORD = os.path.join(ROOT, "docs", "experiments", "digits", "baselines.json")
N_TEST, N_VALID = 497, 200


def digits_arrays():
    """The fixed split of scikit-learn's digits in the .npz format (data/images.py)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)  # [1797, 8, 8]
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=N_TEST, stratify=y, random_state=0)
    x_train, x_valid, y_train, y_valid = train_test_split(x_rest, y_rest, test_size=N_VALID, stratify=y_rest,
                                                          random_state=0)
    return {"x_train": x_train, "y_train": y_train, "x_valid": x_valid, "y_valid": y_valid,
            "x_test": x_test, "y_test": y_test}


def write_digits(path):
    arrays = digits_arrays()

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    atomic_write(path, write)
    return arrays


def baselines(data, n_labelled, seed):
    """Test errors of the SVM, logistic regression and label spreading on one labelled split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading
    from sklearn.svm import SVC

    (x, y), (x_test, y_test) = data.splits["train"], data.splits["test"]
    labelled, _ = mnist.labelled_split(y, n_labelled, seed, data.n_classes)
    errors = {}
    for name, model in (("svm_rbf_c10", SVC(kernel="rbf", C=10)), ("logistic", LogisticRegression(max_iter=5000))):
        model.fit(x[labelled], y[labelled])
        errors[name] = float(np.mean(model.predict(x_test) != y_test))
    targets = np.full(len(y), -1)
    targets[labelled] = y[labelled]
    spreading = LabelSpreading(kernel="knn", n_neighbors=7, alpha=0.2, max_iter=1000).fit(x, targets)
    errors["label_spreading_knn7"] = float(np.mean(spreading.predict(x_test) != y_test))
    return errors


def report(labels, seeds):
    """Markdown rows: test error % of the shipped digits runs (M2 alone, M1+M2; recipe small) and of
    the baselines, mean ± std over the seeds, each split, the worst."""
    base = {(r["labels"], r["seed"]): r for r in read_json(RECORD)["runs"]}
    lines = ["| labels | method | test error %: mean ± std (splits " + ", ".join(map(str, seeds)) + ") | worst |",
             "| --- | --- | --- | --- |"]
    methods = [("M2 alone on pixels", lambda n, s: read_json(os.path.join(
                   ROOT, "weights", "M2", f"digits_m2_labels{n}_seed{s}_small.json"))["test_error"]),
               ("M1+M2 (Gaussian M1)", lambda n, s: read_json(os.path.join(
                   ROOT, "weights", "M2", f"digits_m1m2_labels{n}_seed{s}_small.json"))["test_error"]),
               ("SVM (RBF, C = 10), labelled only", lambda n, s: base[(n, s)]["svm_rbf_c10"]),
               ("logistic regression, labelled only", lambda n, s: base[(n, s)]["logistic"]),
               ("label spreading (7-NN graph)", lambda n, s: base[(n, s)]["label_spreading_knn7"])]
    for n in labels:
        for name, error in methods:
            e = 100 * np.array([error(n, s) for s in seeds])
            lines.append(f"| {n} | {name} | {e.mean():.2f} ± {e.std(ddof=1):.2f} ({', '.join(f'{v:.2f}' for v in e)}) "
                         f"| {e.max():.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=DEFAULT_PATH, help="the .npz to write (default data/digits.npz)")
    p.add_argument("--baselines", action="store_true", help="also the baselines' test errors, into " + RECORD)
    p.add_argument("--labels", type=int, nargs="+", default=[50, 100], help="labelled images (default 50 100)")
    p.add_argument("--seeds", type=count, nargs="+", default=[0, 1, 2], help="labelled splits (default 0 1 2)")
    p.add_argument("--report", action="store_true", help="only print the table of the shipped records")
    args = p.parse_args(argv)
    if args.report:
        print(report(args.labels, args.seeds))
        return
    arrays = write_digits(args.out)
    print(f"{args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
    if not args.baselines:
        return
    data = images.load(args.out)
    rows = []
    for n in args.labels:
        for seed in args.seeds:
            rows.append({"labels": n, "seed": seed, **baselines(data, n, seed)})
            print(json.dumps(rows[-1]))
    for n in args.labels:
        for name in ("svm_rbf_c10", "logistic", "label_spreading_knn7"):
            e = 100 * np.array([r[name] for r in rows if r["labels"] == n])
            print(f"{n} labels, {name}: {e.mean():.2f} ± {e.std(ddof=1) if len(e) > 1 else 0:.2f}% "
                  f"(worst {e.max():.2f}%)")
    write_json(RECORD, {"data": os.path.relpath(args.out, ROOT), "command": " ".join(["python", "tools/digits.py",
                                                                                     *(argv or sys.argv[1:])]),
                        "runs": rows})


if __name__ == "__main__":
    run_cli(main)
