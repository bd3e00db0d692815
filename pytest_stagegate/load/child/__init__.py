"""The load child process: the only place that imports locust or gevent.

Started by ``load.process`` as ``python -m pytest_stagegate.load.child``; see
docs/load-engine.md.
"""
