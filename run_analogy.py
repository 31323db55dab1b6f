"""Analogies (style held per row, class per column), class-conditional samples and the grid of
handwriting styles of a trained M2.

    python run_analogy.py                   # pixel M2: temp/analogy.png and temp/conditional.png
    python run_analogy.py --model m1m2      # the stacked model, decoded through M1
    python run_analogy.py --styles          # the 2-D z M2: temp/styles.png

Analogies as in the paper's Figure 1(b): each row's leftmost image is a test image x with label y; its
style z is the mean of q(z|x, y), decoded with every class 0-9. Conditional samples: one row per class,
z ~ p(z) shared down each column. Styles as in its Figure 1(a): for each class, an M2 with a 2-D z
decoded over a grid of z (the Gaussian's inverse CDF of an even grid on (0, 1)).
"""
import os

from ssdgm.data import images, mnist
from ssdgm.models import registry
from ssdgm.training.cli import ArgumentParser, UserError, positive_int, run_cli, seed_value

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    drawn = [spec for spec in registry.SPECS.values() if spec.draws]
    p = ArgumentParser(description="Analogy grid and class-conditional samples of a trained M2.")
    p.add_argument("--model", choices=[s.name for s in drawn], default="m2",
                   help="; ".join(f"{s.name}: {s.what}" for s in drawn) + " (default m2, as the paper's figure)")
    p.add_argument("--weights", help="M2 weights (default weights/M2/m2_labelsall_seed0_authors.npz, "
                                     "or m1m2_labels100_seed0.npz for --model m1m2)")
    p.add_argument("--m1-weights", default=os.path.join(HERE, "weights", "M1", "m1.npz"),
                   help="M1 weights (m1m2 only; default weights/M1/m1.npz)")
    p.add_argument("--seed", type=seed_value, default=0, help="chooses the test images and the random z")
    p.add_argument("--rows", type=positive_int, default=10, help="analogy rows, one test image each (default 10)")
    p.add_argument("--samples", type=positive_int, default=10, help="random z per class row (default 10)")
    p.add_argument("--styles", type=positive_int, nargs="?", const=12, metavar="N",
                   help="only draw the grid of styles (N x N z per class, default 12) of an M2 on pixels with a "
                        "2-D z (default weights/M2/m2_labelsall_seed0_styles.npz), as styles.png beside --out")
    p.add_argument("--out", default=os.path.join(HERE, "temp", "analogy.png"),
                   help="analogy figure; the conditional samples go beside it as conditional.png")
    p.add_argument("--data", default=mnist.DEFAULT_PATH,
                   help="images whose test set the analogies start from (default MNIST; the .npz format of data/images.py)")
    args = p.parse_args(argv)
    spec = registry.get(args.model)
    if args.styles and "styles" not in spec.recipes:
        raise UserError(f"--styles draws a model of the styles recipe (a 2-D z): {spec.name} has none")
    if args.out.endswith(os.sep) or os.path.isdir(args.out):
        raise UserError(f"--out {args.out}: a folder; name the analogy figure's file, e.g. {os.path.join(args.out, 'analogy.png')}")
    labels, recipe = spec.draws["labels"], "styles" if args.styles else spec.draws["recipe"]
    flags = f"--model {spec.name} --labels {labels}" + ("" if recipe == spec.default_recipe else f" --recipe {recipe}")
    args.hint = f"run `python train_M2.py -train {flags}{spec.draws.get('extra', '') if not args.styles else ''}` to train it"
    args.weights = args.weights or os.path.join(HERE, "weights", spec.folder,
                                                spec.weights_name(recipe, "", labels, 0) + ".npz")
    args.reads = spec.reads
    return args


def main(argv=None):
    args = parse_args(argv)

    from ssdgm.files import check_writable
    from ssdgm.models import trained
    from ssdgm.training.figures import digit_grid, save_png, styles_picture
    check_writable(os.path.dirname(os.path.abspath(args.out)), "--out")
    model = trained.load(args.weights, args.m1_weights, args.hint)
    if (model.m1 is None) != (args.reads == "pixels"):
        raise UserError(f"{args.weights}: an M2 for the other --model")
    if args.styles:
        path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "styles.png")
        try:
            grids = model.style_grids(args.styles)
        except ValueError as e:
            raise UserError(f"--styles: {e}")
        save_png(path, styles_picture(grids, args.styles), "M2 on pixels with a 2-D z: classes 0-9, each over a grid of z",
                 zoom=1)
        print(f"styles: {path}")
        return
    data = images.load(args.data)
    x_test, y_test = data.splits["test"]
    if x_test.shape[1] != model.x_dim:
        raise UserError(f"{args.weights}: a model of images of {model.x_dim} values; {args.data}'s have {x_test.shape[1]}")
    shape, k = images.picture_shape(data.shape, model.x_dim), model.m2.n_classes
    zoom = max(3, 56 // shape[0])  # small images (8 x 8 digits) drawn at about two thirds of MNIST's size
    rows = mnist.one_per_class(y_test, args.rows, args.seed, k)
    grid = model.analogies(x_test[rows], y_test[rows])
    name = "M2 on pixels" if model.m1 is None else "M1+M2"
    save_png(args.out, digit_grid(grid.reshape(-1, model.x_dim), args.rows, k + 1, shape=shape),
             f"{name}: test image, then its style with classes 0-{k - 1}", zoom)
    conditional = os.path.join(os.path.dirname(os.path.abspath(args.out)), "conditional.png")
    save_png(conditional, digit_grid(model.conditional_samples(args.samples, args.seed).reshape(-1, model.x_dim),
                                     k, args.samples, shape=shape),
             f"{name}: class 0-{k - 1} per row, one random style per column", zoom)
    print(f"analogies: {args.out}\nconditional samples: {conditional}")


if __name__ == "__main__":
    run_cli(main)
