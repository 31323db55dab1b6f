import os

# As cli.quiet_tensorflow, for a user's own script: oneDNN's batched matrix product crashes on some
# AVX-512 processors for the [K, 1, n, d] operands the models make; it must be off before TensorFlow loads.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
