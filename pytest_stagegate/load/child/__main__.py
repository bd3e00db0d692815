"""``python -m pytest_stagegate.load.child``: the load child process."""

# Locust first, through the runner: it monkey-patches the standard library (docs/load-engine.md).
from .runner import main  # isort: skip

import contextlib
import os
import sys

code = main()
with contextlib.suppress(Exception):
    sys.stderr.flush()
# os._exit: gevent, zmq and user greenlets may otherwise hold the interpreter at exit
os._exit(code)
