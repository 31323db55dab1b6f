"""The images: MNIST (data/mnist.npz, checksum-verified), any image set in one .npz, and minibatches."""
from ssdgm import UserError


class DataError(UserError):
    """An image file that is missing, corrupt or not of the documented format, or labels that do not fit it."""
