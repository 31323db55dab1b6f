import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as cli.quiet_tensorflow, before TensorFlow loads
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cli  # noqa: E402

cli.quiet_tensorflow()


def sharing(fixture):
    """Marks the tests that share a session-scoped fixture: pytest-xdist runs them on one worker, which
    builds it once (a module-scoped one would be rebuilt after the worker ran another module's tests)."""
    return pytest.mark.xdist_group(fixture)
