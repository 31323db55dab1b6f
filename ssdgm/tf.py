"""TensorFlow and Keras for every module of the package: `from ssdgm.tf import keras, tf`.

TensorFlow's C++ start-up notices (no GPU found, ...) are printed before it reads TF_CPP_MIN_LOG_LEVEL,
so only a redirect of stderr during its import hides them; an import error still surfaces as the
Python exception once stderr is back. oneDNN's batched matrix product crashes (SIGSEGV) on some
AVX-512 processors (AMD EPYC, family 26) for a [K, 1, n, d] operand, as every evaluation here has;
TensorFlow's own kernels do not, so oneDNN is off unless the environment says otherwise.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_saved, _devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
os.dup2(_devnull, 2)
try:
    import keras
    import tensorflow as tf
finally:
    os.dup2(_saved, 2)
    os.close(_saved)
    os.close(_devnull)

__all__ = ["keras", "tf"]
