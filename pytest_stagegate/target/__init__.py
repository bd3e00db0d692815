"""The target as an HTTP peer: clients with a whole-request deadline (``client``), and the
readiness wait and build check before the first test (``readiness``)."""
