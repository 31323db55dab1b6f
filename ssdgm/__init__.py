"""Semi-supervised learning with deep generative models (Kingma et al. 2014), and the auxiliary models
of Maaløe et al. (2016), in TensorFlow 2.

The repository's folders are this package's parts: `ssdgm.data` is data/, `ssdgm.models` models/,
`ssdgm.training` training/, `ssdgm.tools` tools/. They are reached through the one name `ssdgm`, so
that installing the project puts no generic top-level name (`data`, `models`) on a user's path,
where it would shadow their own.

    from ssdgm.models.trained import load_classifier
"""
import os

__path__.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class UserError(Exception):
    """A problem the user can fix (a bad flag, a missing or corrupt file): the command line prints it
    as one line and exits with status 2. data.DataError and models.ModelError are of this kind."""
