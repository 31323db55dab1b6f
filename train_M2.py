"""Train the stacked M1+M2 classifier (`-train`), or evaluate the shipped weights (no flag).

    python train_M2.py -train                 # M1+M2 with 100 labels on the shipped M1
    python train_M2.py                        # validation and test error of the shipped N=100 model
    python train_M2.py -train --model m2 --labels 100   # M2 alone on pixels (the paper's "M2")
    python train_M2.py -train --model m2 --labels all --recipe authors --epochs 400   # the analogy model
    python train_M2.py -train --model m2 --labels all --recipe styles   # the 2-D z model of the styles figure
    python train_M2.py -train --model adgm --threads 2      # the auxiliary deep generative model (or sdgm)

Any model of the registry (ssdgm.models.registry) trains and evaluates here; its code loads, with
TensorFlow, only once the flags are known to be good, so that --help and a bad flag answer at once.
"""
import os

from ssdgm.data import images, mnist
from ssdgm.models import registry
from ssdgm.training import cli, settings

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, "weights")


def parse_args(argv=None):
    """The command's Job (training.cli.Job); UserError for flags that do not fit together."""
    specs = [registry.get(name) for name in registry.semi_supervised()]
    p = cli.ArgumentParser(description="M1+M2, M2 alone and the auxiliary models on MNIST or your own images.",
                           parents=[cli.run_flags(mnist.DEFAULT_PATH, settings.recipe_names(specs))])
    p.add_argument("--model", choices=[s.name for s in specs], default=registry.DEFAULT,
                   help="; ".join(f"{s.name}: {s.what}" for s in specs) + f" (default {registry.DEFAULT})")
    p.add_argument("--labels", default="100",
                   help="labelled training images N, a multiple of the classes, or 'all' (default 100)")
    p.add_argument("--m1-weights", help="M1 weights file, for a model that reads M1's features (default "
                                        "weights/M1/m1.npz, or weights/M1/<data>_m1.npz for another --data; or "
                                        "the file of the M1 that the weights name, beside it)")
    settings.add_flags(p, specs)
    args = p.parse_args(argv)
    spec = registry.get(args.model)
    flags = settings.given(args)
    cli.check_training(args, flags)
    if args.m1_weights and spec.reads != "features":
        raise cli.UserError(f"--m1-weights is for a model that reads M1's features: {spec.name} reads pixels")
    start = images.prefix(args.data)
    m1_default = registry.get("m1").shipped(None, start)  # the M1 that train_M1.py ships for this data
    n_train, n_classes = images.sizes(args.data, args.subset)
    if args.labels != "all" and not (args.labels.isascii() and args.labels.isdigit()):
        raise cli.UserError(f"--labels must be a number or 'all', got {args.labels!r}")
    labels = "all" if args.labels == "all" or int(args.labels) == n_train else int(args.labels)
    mnist.check_label_count(n_train if labels == "all" else labels, n_train, n_classes)
    config = settings.resolve(spec, args.recipe, flags, labels, n_train,
                              settings.identity(args.seed, args.subset, args.data))
    name = spec.weights_name(config["recipe"], start, labels, args.seed, config.get("authors_leak", False))
    out = args.out or os.path.join(HERE, "temp", spec.folder, name)
    departed = cli.departures(flags, args.subset, ["m1_weights"] if args.m1_weights not in (None, m1_default) else [])
    weights = cli.weights_path(args, os.path.join(WEIGHTS, spec.folder, name + ".npz"), out, WEIGHTS, departed)
    return cli.Job(spec, config, args.train, args.data, out, weights, args.threads,
                   args.ckpt_minutes or cli.CHECKPOINT_MINUTES, args.m1_weights or m1_default)


def main(argv=None):
    job = parse_args(argv)
    from ssdgm.training import semisupervised  # TensorFlow loads here
    semisupervised.main(job)


if __name__ == "__main__":
    cli.run_cli(main)
