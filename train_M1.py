"""Train M1 (`-train`), or evaluate the shipped M1 weights (no flag).

    python train_M1.py -train        # trains, resuming from temp/M1 if a run is there
    python train_M1.py               # test-set bound and active units of weights/M1/m1.npz
    python train_M1.py --gif         # the shipped run's reconstructions over training, as a GIF
"""
import os

from ssdgm.data import images, mnist
from ssdgm.models import registry
from ssdgm.training import cli, settings

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_FRAMES = os.path.join(HERE, "docs", "M1_training_frames.npz")


def parse_args(argv=None):
    """The command's Job (training.cli.Job)."""
    spec = registry.get("m1")
    p = cli.ArgumentParser(description="M1 (VAE) of Kingma et al. 2014 on MNIST or your own images.",
                           parents=[cli.run_flags(mnist.DEFAULT_PATH, list(spec.recipes))])
    settings.add_flags(p, [spec])
    p.add_argument("--gif", nargs="?", const=SHIPPED_FRAMES, metavar="FRAMES",
                   help="only turn a frames file (default: the shipped M1 run's, docs/M1_training_frames.npz; "
                        "a run's is <out>/frames.npz) into M1_training.gif beside it")
    args = p.parse_args(argv)
    if args.gif and args.train:
        raise cli.UserError("--gif only draws a GIF from a frames file; leave out -train (a training run draws its own)")
    flags = settings.given(args)
    cli.check_training(args, flags)
    start = images.prefix(args.data)
    config = settings.resolve(spec, args.recipe, flags, run=settings.identity(args.seed, args.subset, args.data))
    if config["pca"] and config["likelihood"] != "gaussian":
        raise cli.UserError("--pca gives continuous components: add --likelihood gaussian")
    name = spec.weights_name(config["recipe"], start)
    out = args.out or os.path.join(HERE, "temp", start + spec.folder + name[len(start + spec.name):])  # <data>M1[_<recipe>]
    weights = cli.weights_path(args, os.path.join(HERE, "weights", spec.folder, name + ".npz"), out,
                               os.path.join(HERE, "weights"), cli.departures(flags, args.subset))
    return cli.Job(spec, config, args.train, args.data, out, weights, args.threads,
                   args.ckpt_minutes or cli.CHECKPOINT_MINUTES, gif=args.gif)


def main(argv=None):
    job = parse_args(argv)
    from ssdgm.training import unsupervised  # TensorFlow loads here
    unsupervised.main(job)


if __name__ == "__main__":
    cli.run_cli(main)
