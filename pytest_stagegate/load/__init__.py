"""The Locust side of the gate.

Nothing in this package may import locust at module level except ``runner`` (the child process
entry point, ``python -m pytest_stagegate.load.child``). The pytest process uses ``plan``,
``process`` and ``result`` only; Locust's gevent monkey-patching never reaches it. ``usage``
(the saturation rule) is pure too, for the runner and its tests.
"""
