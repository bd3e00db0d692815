"""The load engine: the plan, the child processes that run Locust, and what they measured.

Only ``child/`` imports locust or gevent, and only in the child process
(``python -m pytest_stagegate.load.child``). The pytest process uses ``plan``, ``process``,
``result``, ``usage`` and ``remote``; the pure parts of ``child`` (rounding, recorder, abort,
assemble) are imported by the unit tests too. See docs/load-engine.md.
"""
