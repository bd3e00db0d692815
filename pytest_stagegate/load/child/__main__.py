"""``python -m pytest_stagegate.load.child``: the load child process."""

# isort: off
# Locust first: it monkey-patches the standard library with gevent, which must happen before
# anything imports ssl or socket (docs/load-engine.md).
import locust  # noqa: F401

from .main import main

# isort: on
import contextlib
import os
import sys

code = main()
with contextlib.suppress(Exception):
    sys.stderr.flush()
# os._exit: gevent, zmq and user greenlets may otherwise hold the interpreter at exit
os._exit(code)
