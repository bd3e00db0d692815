"""The one home of every default: file names, ports, and the settings stagegate.yaml may leave
out. The configuration model, the loader, the plan, the CLI and the pytest glue read them here.
"""

from __future__ import annotations

# Files
CONFIG_FILE = "stagegate.yaml"  # at pytest's rootdir, or walking up (discovery.find_config)
MAX_CONFIG_BYTES = 1024 * 1024  # a stagegate.yaml larger than this is refused unparsed
VERDICT_FILE = "stagegate-verdict.json"
MAX_VERDICT_BYTES = 16 * 1024 * 1024  # stagegate verify reads no more of a verdict than this
JUNIT_FILE = "stagegate-junit.xml"
LOAD_LOG_FILE = "stagegate-load.log"  # Locust's log, next to the verdict

# The target
TARGET_ENV = "STAGEGATE_TARGET"  # the environment variable that names the target
TARGET = "local"  # --target when neither the option, STAGEGATE_TARGET nor the ini names one
REQUEST_TIMEOUT = 10.0  # seconds, a whole request (targets.NAME.timeout)
READY_TIMEOUT = 60.0  # targets.NAME.ready.timeout
READY_INTERVAL = 0.25  # first poll interval of the readiness wait; doubles ...
READY_MAX_INTERVAL = 5.0  # ... up to this
MAX_BODY = 16 * 1024 * 1024  # bytes: the largest response body accepted (targets.NAME.max_body)

# The load (gate.load)
USERS = 10
SPAWN_RATE = 10.0
DURATION = 30.0  # seconds of load, warm-up included
# the open model (gate.load.rate / stages with rate)
# default users (most concurrent iterations) = peak rate x this many seconds (Little's law: as
# many as are busy when the answers take this long; 50 at 100/s, enough to keep sending through
# a 500 ms stall), ...
OPEN_USERS_PER_RATE = 0.5
OPEN_MIN_USERS = USERS  # ... at least this many ...
# ... and at most this many: a load process's users cost it CPU whether busy or not, and at
# 2,000/s a second's worth saturated it (bench_arrival: p99 0.9-3.0 s against 3-36 ms with 100)
OPEN_MAX_DEFAULT_USERS = 200
ARRIVAL_LAG = 0.5  # seconds: an iteration that cannot start this late after its schedule is dropped
MAX_DROPPED = 0.01  # more dropped iterations than this share make latency budgets inconclusive
STOP_GRACE = 15.0  # gate.load.abort.grace: extra seconds the load may take to stop
MAX_DATA_ROWS = 100_000  # gate.load.data: the most rows of a data file (they travel in the plan)

# Stopping the load early (gate.load.abort)
ABORT_ERROR_RATE = 0.9  # at least this share of requests failed ...
ABORT_MIN_REQUESTS = 20  # ... over at least this many requests
ABORT_LATENCY_FACTOR = 3.0  # or a latency budget exceeded this many times over ...
ABORT_LATENCY_FOR = 5.0  # ... for this many seconds in a row

# The judgment (gate)
MIN_SAMPLES = 100
ERROR_RATE = 0.01  # the error budget of every request name and total (gate.default_error_rate)
SATURATION_CPU = 90.0  # percent busy (CPU + waiting for a CPU, of one core), per load process

# Distributed mode
MASTER_PORT = 5557  # Locust's own default for its master

# Signing the verdict
SIGNING_KEY_ENV = "STAGEGATE_SIGNING_KEY"  # the environment variable holding the key

# --- history, metrics, live metrics, workers (0.2) ------------------------------------------
HISTORY_KEEP = 200  # --gate-history: verdicts kept per target (ini stagegate_history_keep)
PASS_RATE_GOAL = 0.95  # stagegate history: the deployment success rate a programme aims for
VERIFY_TIME_GOAL = 30 * 60.0  # seconds: run start to verdict, the time-to-verify goal
WORKER_TOKEN_ENV = "STAGEGATE_WORKER_TOKEN"  # remote workers prove this shared secret
OTEL_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"  # set: the load's metrics go out live
OTEL_EXPORT_INTERVAL = 5.0  # seconds between exports, unless OTEL_METRIC_EXPORT_INTERVAL is set
OTEL_FLUSH_TIMEOUT = 3.0  # seconds the load child waits for its last export at its end
