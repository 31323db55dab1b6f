import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
importlib.import_module("ssdgm.tf")  # TensorFlow, quietly and with oneDNN off, before any test imports it


def sharing(fixture):
    """Marks the tests that share a session-scoped fixture: pytest-xdist runs them on one worker, which
    builds it once (a module-scoped one would be rebuilt after the worker ran another module's tests)."""
    return pytest.mark.xdist_group(fixture)
