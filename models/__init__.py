"""The models, and the one interface through which the scripts, the training loop, Table 1 and the
Python API reach them.

A model is a `Spec` in models/registry.py (`register`, where the built-in ones are) and a module
of code that the spec names, imported only when a run needs it, so that the command line answers
--help before TensorFlow loads. The module defines:

    build(name, settings, x_dim, n_classes)         the untrained model of a run's settings
    train_step(settings, model, optimizer, inputs, labels, rng)
                                                    step(labelled indices, unlabelled indices) -> terms
                                                    (labelled_bound, unlabelled_bound, reconstruction,
                                                    kl, log_qy: what the log prints)
    load(path, missing_hint, kinds)                 (model, extra arrays) of a weights file of `kinds`
    kind_of(config)                                 the spec name of a weights file's config, or None
    validation_bound(model, x, y, eval_seed), generative_error_rate(model, x, y, eval_seed)
    LOG_FIELDS                                      extra metrics: {key: (function(model, x), format)}

and its model's `classify(x)` gives the logits of q(y|x), which the error rate and the API read.

`inputs` is a models.features.Features of what the spec reads: "pixels" or "features" (M1's latent
features, found through an M1 weights file).
"""
from ssdgm import UserError


class ModelError(UserError):
    """A weights file that is missing, corrupt or of another model, or a model asked for that is not here."""
