"""Training and evaluation of M1 (train_M1.py's work): its task for the one training loop, the test
bound, the reconstructions and the GIF of a run's pictures."""
import os

import numpy as np

from ssdgm import UserError
from ssdgm.data import images, mnist
from ssdgm.files import check_writable
from ssdgm.models import m1
from ssdgm.models.weights import save_weights
from ssdgm.tf import keras, tf
from ssdgm.training import loop
from ssdgm.training.figures import add_frame, digit_grid, read_frames, save_png, write_gif
from ssdgm.training.run_folder import RunFolder

GIF_FRAMES = 20


def main(job):
    """Draws the GIF of the frames file job.gif, or trains (job.train) or evaluates M1 as job says."""
    loop.set_threads(job.threads)
    if job.gif:
        make_gif(job.gif)
    else:
        (train if job.train else evaluate)(job)


def load_data(job):
    data = images.load(job.data, job.settings["subset"])
    n_train = len(data.splits["train"][0])
    if job.settings["batch_size"] > n_train:
        raise UserError(f"--batch-size {job.settings['batch_size']} exceeds the {n_train} training images")
    return data


def grid(evaluator, data):
    """The picture of test images beside their reconstructions, in the data's image shape."""
    return digit_grid(evaluator.reconstructions(), 8, 16,
                      shape=images.picture_shape(data.shape, evaluator.model.image_dim))


def evaluate(job):
    model = m1.load(job.weights)
    check_writable(os.path.dirname(job.out), "--out (the reconstructions go beside it)")
    data = load_data(job)
    if model.image_dim != len(data.splits["test"][0][0]):
        raise UserError(f"{job.weights}: an M1 of {model.image_dim} inputs; {job.data}'s images have {len(data.splits['test'][0][0])}")
    evaluator = m1.Evaluator(model, data.splits, mnist.EVAL_SEED)
    bound, rec, kl = evaluator.bound("test")
    print(f"M1 {job.weights}: test bound {bound:.2f} nats (reconstruction {rec:.2f}, KL {kl:.2f}), "
          f"{evaluator.active()} of {model.z_dim} latent units active")
    path = os.path.join(os.path.dirname(job.out), "M1_reconstructions.png")
    save_png(path, grid(evaluator, data), "M1: test images (left of each pair) and reconstructions")
    print(f"reconstructions: {path}")


def make_gif(frames):
    """M1_training.gif beside the frames file: at most GIF_FRAMES of its frames, spaced evenly in
    log(epoch), since the early epochs are where the pictures change."""
    if not os.path.exists(frames):
        raise UserError(f"{frames}: no frames; a training run keeps one at every evaluation "
                        "(`python train_M1.py -train` writes temp/M1/frames.npz)")
    epochs, pictures = read_frames(frames)
    chosen = np.unique(np.geomspace(1, len(epochs), min(GIF_FRAMES, len(epochs))).round().astype(int) - 1)
    path = os.path.join(os.path.dirname(os.path.abspath(frames)), "M1_training.gif")
    write_gif(path, pictures[chosen], [f"M1 after {e} epochs: test images, reconstructions" for e in epochs[chosen]])
    print(f"{len(chosen)} of {len(epochs)} frames -> {path}")


def train(job):
    config = job.settings
    with RunFolder(job.out, job.weights) as run:
        data = load_data(job)
        splits = data.splits
        x_train = splits["train"][0]
        batch_size = config["batch_size"]
        steps = len(x_train) // batch_size
        keras.utils.set_random_seed(config["seed"])
        pca = images.fit_pca(x_train, config["pca"]) if config["pca"] else None
        model = m1.M1(x_train.shape[1] if pca is None else len(pca.values), hidden=config["hidden"],
                      z_dim=config["z_dim"], init=config["init"], likelihood=config["likelihood"], pca=pca)
        n_fitted, x_train = min(len(x_train), 10_000), model.inputs(x_train)
        optimizer = keras.optimizers.Adam(config["lr"])
        optimizer.build(model.trainable_variables)
        rng = loop.make_rng(config["seed"], config["rng"])
        config = {**config, "eval": f"one-sample bound, images binarised once with seed {mnist.EVAL_SEED}, "
                                    "nats per image" if config["likelihood"] == "bernoulli" else
                  f"one-sample bound on the grey values, noise of seed {mnist.EVAL_SEED}, nats per image"}
        average = loop.MovingAverage(model.trainable_variables, config["ema"])
        run.open_checkpoints(config, model=model, optimizer=optimizer, rng=rng, average=average)
        if pca is not None:
            run.log(f"PCA of the first {n_fitted} training images: {len(pca.values)} whitened components")
        evaluator = m1.Evaluator(model, splits, mnist.EVAL_SEED)
        step = m1.make_train_step(model, optimizer, tf.constant(x_train), rng, len(x_train), config["prior_sd"])

        def epoch_batches(epoch):
            order = np.random.default_rng([config["seed"], epoch]).permutation(len(x_train))
            return (order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32),)

        def evaluate_epoch(epoch):
            (v_bound, v_rec, v_kl), t_bound = evaluator.bound("valid"), evaluator.bound("test")[0]
            return {"score": v_bound, "valid_bound": v_bound, "valid_reconstruction": v_rec,
                    "valid_kl": v_kl, "test_bound": t_bound, "active_units": evaluator.active()}

        def describe(train, ev):
            return (f"train bound {train['bound']:8.2f} (rec {train['reconstruction']:8.2f}, KL {train['kl']:6.2f}) | "
                    f"valid {ev['valid_bound']:8.2f} | test {ev['test_bound']:8.2f} | active {ev['active_units']:2d}")

        task = loop.Task(model, optimizer, rng, loop.compile_steps(step, model.trainable_variables, average),
                             epoch_batches, evaluate_epoch, describe,
                             lambda path: save_weights(path, model, model.get_config(), pca and pca.arrays()),
                             steps_per_call=max(1, min(steps, 50)), average=average,
                             picture=lambda epoch: add_frame(os.path.join(job.out, "frames.npz"), epoch,
                                                             grid(evaluator, data)))
        loop.fit(run, task, config, job.weights, job.ckpt_minutes)
    make_gif(os.path.join(job.out, "frames.npz"))


