"""The import graph: no cycle, no upward import, locust and gevent only in the load child.

The rules live with the checker in tests/import_graph.py (its docstring states them; the
package is read with ``ast``, nothing is imported). In short, layers derived from the tree:
core (every top-level module but ``cli``) < ``config`` < ``verdict`` < ``target``, ``load`` <
``plugin``, ``cli``; arrows between units point strictly down (core modules may import each
other); no cycle through module-level or lazy imports (``if TYPE_CHECKING:`` imports are never
run and do not count for cycles, but do for every other rule); ``locust``, ``gevent``,
``geventhttpclient`` and ``zmq`` only under ``load/child/``, whose ``__init__.py`` imports
nothing and which nothing outside imports; nothing imports ``plugin/__init__.py`` or the package
root, and only ``plugin/__init__.py`` imports ``plugin/session.py``. The package root's
``__init__.py`` (the lazy public API) is exempt as an importer.

The synthetic packages below prove that each rule fires; the last tests run it on the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.import_graph import check, locust_free, outside_child, scan

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_stagegate"

# A small package in the real shape that breaks no rule; each case below changes one file.
CLEAN: Mapping[str, str] = {
    "__init__.py": (
        "from typing import TYPE_CHECKING\nfrom ._version import v\n"
        "if TYPE_CHECKING:\n    from .plugin.state import S\n    from .load.plan import P\n"
    ),
    "_version.py": "v = '1'\n",
    "errors.py": "import difflib\n",
    "units.py": "from .errors import E\n",
    "cli.py": (
        "from . import units\nfrom .verdict.model import V\n"
        "def main():\n    from .load.remote import run\n"
    ),
    "config/__init__.py": "from .loader import load\n",
    "config/loader.py": "from .. import units\nfrom .model import M\nfrom ..errors import E\n",
    "config/model.py": "from ..errors import E\n",
    "verdict/__init__.py": "",
    "verdict/model.py": "from ..config import M\nfrom .._version import v\n",
    "target/__init__.py": "",
    "target/client.py": "import httpx\nfrom ..config import T\n",
    "load/__init__.py": '"""The load engine."""\n',
    "load/plan.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..config import T\n"
    ),
    "load/process.py": "import psutil\nfrom .plan import P\nRUNNER = 'pkg.load.child'\n",
    "load/remote.py": "from .process import RUNNER\nfrom ..config import load\n",
    "load/child/__init__.py": '"""The child."""\nfrom __future__ import annotations\n',
    "load/child/__main__.py": "from .runner import main\n",
    "load/child/runner.py": (
        "import locust\nimport gevent.pool\nfrom locust.env import Environment\n"
        "import zmq\nfrom ..plan import P\nfrom ... import units\nfrom .recorder import R\n"
    ),
    "load/child/recorder.py": "from ...histogram import H\n",
    "histogram.py": "import math\n",
    "plugin/__init__.py": (
        "import pytest\nfrom . import fixtures\n"
        "def pytest_configure(config):\n    from .session import Run\n"
    ),
    "plugin/session.py": "from .state import S\nfrom .gate import run_gate\n",
    "plugin/state.py": "from ..verdict.model import V\n",
    "plugin/gate.py": (
        "from .state import S\nfrom ..target.client import c\n"
        "def run_gate():\n    from ..load.process import run\n"
    ),
    "plugin/fixtures.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .state import S\n"
    ),
    "plugin/markers.py": "from . import state\n",
}


def build(tmp_path: Path, changes: Mapping[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {**CLEAN, **changes}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_clean_package_breaks_no_rule(tmp_path: Path) -> None:
    root = build(tmp_path, {})
    assert check(root) == []
    graph = scan(root)
    # the checker saw every kind of arrow, so the silence above is not blindness
    arrows = {(i.importer, i.imported, i.kind) for i in graph.imports}
    assert ("pkg.cli", "pkg.load.remote", "lazy") in arrows
    assert ("pkg.load.plan", "pkg.config", "type") in arrows
    assert ("pkg.config.loader", "pkg.units", "module") in arrows  # `from .. import units`
    assert ("pkg.plugin.markers", "pkg.plugin.state", "module") in arrows  # `from . import state`
    assert ("pkg.load.child.runner", "pkg.load.plan", "module") in arrows
    assert ("pkg.load.child.runner", "locust", "module") in arrows
    assert ("pkg.load.child.runner", "gevent", "module") in arrows


CASES = {
    "a cycle between core modules": (
        {"errors.py": "from .units import format_ms\n"},
        "import cycle: pkg.errors -> pkg.units -> pkg.errors "
        "[pkg/errors.py:1 (module); pkg/units.py:1 (module)]",
    ),
    "a cycle through a lazy import": (
        {"config/model.py": "from ..errors import E\ndef f():\n    from .loader import load\n"},
        "import cycle: pkg.config.loader -> pkg.config.model -> pkg.config.loader "
        "[pkg/config/loader.py:2 (module); pkg/config/model.py:3 (lazy)]",
    ),
    "two cycles in one tangle": (
        {
            "errors.py": "from .units import format_ms\n",
            "units.py": "from .errors import E\nfrom .histogram import H\n",
            "histogram.py": "from .errors import closest\n",
        },
        "import cycle: pkg.errors -> pkg.units -> pkg.errors "
        "[pkg/errors.py:1 (module); pkg/units.py:1 (module)]; also in this tangle: pkg.histogram",
    ),
    "config importing verdict": (
        {"config/extra.py": "from ..verdict.model import V\n"},
        "pkg/config/extra.py:1: pkg.config.extra -> pkg.verdict.model (module): "
        "upward import (config 1 -> verdict 2)",
    ),
    "an absolute upward import": (
        {"config/extra.py": "import os\nfrom pkg.verdict.model import V\n"},
        "pkg/config/extra.py:2: pkg.config.extra -> pkg.verdict.model (module): "
        "upward import (config 1 -> verdict 2)",
    ),
    "a core module importing config": (
        {"units.py": "from .errors import E\nfrom .config.model import M\n"},
        "pkg/units.py:2: pkg.units -> pkg.config.model (module): "
        "upward import (core 0 -> config 1)",
    ),
    "a new top-level module is core": (
        {"newthing.py": "import pkg.load.plan\n"},
        "pkg/newthing.py:1: pkg.newthing -> pkg.load.plan (module): "
        "upward import (core 0 -> engines 3)",
    ),
    "an upward import under TYPE_CHECKING": (
        {
            "verdict/model.py": (
                "from ..config import M\nfrom typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..plugin.state import S\n"
            )
        },
        "pkg/verdict/model.py:4: pkg.verdict.model -> pkg.plugin.state (type): "
        "upward import (verdict 2 -> glue 4)",
    ),
    "an upward lazy import": (
        {"load/plan.py": "def plan_for():\n    from ..plugin.state import S\n"},
        "pkg/load/plan.py:2: pkg.load.plan -> pkg.plugin.state (lazy): "
        "upward import (engines 3 -> glue 4)",
    ),
    "target importing load": (
        {"target/client.py": "from ..config import T\nfrom ..load.plan import P\n"},
        "pkg/target/client.py:2: pkg.target.client -> pkg.load.plan (module): "
        "sideways import between two units of layer engines 3",
    ),
    "cli importing the plugin's modules": (
        {"cli.py": "from .plugin.state import S\n"},
        "pkg/cli.py:1: pkg.cli -> pkg.plugin.state (module): "
        "sideways import between two units of layer glue 4",
    ),
    "a folder without a layer": (
        {"storage/__init__.py": "", "storage/disk.py": "from ..plugin.state import S\n"},
        "pkg/storage/: top-level folder without a layer: give it a rank in "
        "tests/import_graph.py RANKS and a place in docs/architecture.md",
    ),
    "locust in the engine's parent side": (
        {"load/process.py": "import psutil\nimport locust\nRUNNER = 'x'\n"},
        "pkg/load/process.py:2: pkg.load.process -> locust (module): "
        "locust may be imported only under load/child/",
    ),
    "gevent imported lazily by the glue": (
        {"plugin/gate.py": "from .state import S\ndef run_gate():\n    from gevent import hub\n"},
        "pkg/plugin/gate.py:3: pkg.plugin.gate -> gevent (lazy): "
        "gevent may be imported only under load/child/",
    ),
    "a locust type in the client": (
        {
            "target/client.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from locust.env import Environment\n"
            )
        },
        "pkg/target/client.py:3: pkg.target.client -> locust (type): "
        "locust may be imported only under load/child/",
    ),
    "locust tried in an except handler": (
        {"cli.py": "try:\n    import json\nexcept ImportError:\n    import locust.env\n"},
        "pkg/cli.py:4: pkg.cli -> locust (module): locust may be imported only under load/child/",
    ),
    "gevent in a method": (
        {
            "plugin/gate.py": (
                "class Gate:\n    def run(self):\n        with x:\n            import gevent\n"
            )
        },
        "pkg/plugin/gate.py:4: pkg.plugin.gate -> gevent (lazy): "
        "gevent may be imported only under load/child/",
    ),
    "zmq in the cli": (
        {"cli.py": "import zmq.green\n"},
        "pkg/cli.py:1: pkg.cli -> zmq (module): zmq may be imported only under load/child/",
    ),
    "the parent importing the child": (
        {"load/process.py": "from .child.recorder import R\n"},
        "pkg/load/process.py:1: pkg.load.process -> pkg.load.child.recorder (module): "
        "imports the load child from outside it (locust would follow)",
    ),
    "the child's __init__ importing": (
        {"load/child/__init__.py": '"""The child."""\nimport os\n'},
        "pkg/load/child/__init__.py:2: pkg.load.child -> os (module): "
        "load/child/__init__.py must import nothing",
    ),
    "a module importing the entry point": (
        {"plugin/markers.py": "from . import find_config_file\n"},
        "pkg/plugin/markers.py:1: pkg.plugin.markers -> pkg.plugin (module): "
        "imports the pytest11 entry point",
    ),
    "the terminal typing against the session": (
        {
            "plugin/terminal.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from .session import Run\n"
            )
        },
        "pkg/plugin/terminal.py:3: pkg.plugin.terminal -> pkg.plugin.session (type): "
        "only plugin/__init__.py may import plugin/session.py",
    ),
    "a module importing the package root": (
        {"verdict/model.py": "from ..config import M\nfrom .. import v\n"},
        "pkg/verdict/model.py:2: pkg.verdict.model -> pkg (module): "
        "imports the package root (the lazy public API); import from the defining module",
    ),
}


@pytest.mark.parametrize(("changes", "expected"), CASES.values(), ids=list(CASES))
def test_the_checker_reports(tmp_path: Path, changes: Mapping[str, str], expected: str) -> None:
    assert check(build(tmp_path, changes)) == [expected]


def test_a_cycle_only_through_type_checking_imports_is_allowed(tmp_path: Path) -> None:
    root = build(
        tmp_path,
        {
            "config/model.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from .loader import Loaded\n"
            )
        },
    )
    assert check(root) == []


def test_every_violation_is_reported_at_once(tmp_path: Path) -> None:
    root = build(
        tmp_path,
        {
            "errors.py": "from .units import format_ms\n",
            "units.py": "from .errors import E\nfrom .config.model import M\n",
            "load/process.py": "import gevent\n",
        },
    )
    problems = check(root)
    assert len(problems) == 3, problems
    assert [p for p in problems if "upward import (core 0 -> config 1)" in p]
    assert [p for p in problems if "gevent may be imported only under load/child/" in p]
    assert [p for p in problems if p.startswith("import cycle: pkg.config.model -> pkg.errors")]


def test_outside_child_is_every_module_the_pytest_process_may_import(tmp_path: Path) -> None:
    modules = outside_child(build(tmp_path, {}))
    assert "pkg.plugin.session" in modules
    assert "pkg.load.process" in modules
    assert "pkg" in modules
    assert not [m for m in modules if m.startswith("pkg.load.child")]


def test_locust_free_follows_executed_imports_and_parent_packages(tmp_path: Path) -> None:
    root = build(
        tmp_path,
        {
            "load/child/abort.py": "from .recorder import R\n",
            "load/child/scenario.py": "def users():\n    from .runner import main\n",
            "load/child/typed.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .runner import R\n"
            ),
        },
    )
    free = set(locust_free(root))
    assert {"pkg", "pkg.plugin", "pkg.plugin.session", "pkg.cli", "pkg.load.process"} <= free
    assert {"pkg.load.child", "pkg.load.child.recorder", "pkg.load.child.abort"} <= free
    assert "pkg.load.child.typed" in free  # a type-only import never runs
    assert not free & {"pkg.load.child.runner", "pkg.load.child.__main__"}
    assert "pkg.load.child.scenario" not in free  # a lazy import runs when called
    assert set(outside_child(root)) <= free
    # importing a submodule runs its parent packages first
    root = build(tmp_path / "2", {"load/child/__init__.py": "from .runner import main\n"})
    assert "pkg.load.child.recorder" not in locust_free(root)


def test_the_scan_reads_the_real_package() -> None:
    graph = scan(PACKAGE)
    assert "pytest_stagegate.plugin" in graph.modules
    assert "pytest_stagegate.load.child" in graph.modules
    child_imports = {
        i.imported for i in graph.imports if i.importer.startswith("pytest_stagegate.load.child.")
    }
    assert {"locust", "gevent"} <= child_imports
    assert {i.kind for i in graph.imports} == {"module", "lazy", "type"}
    free = locust_free(PACKAGE)
    assert "pytest_stagegate.plugin" in free
    assert "pytest_stagegate.load.child.__main__" not in free


def test_the_real_package_keeps_its_layers() -> None:
    problems = check(PACKAGE)
    assert not problems, "\n".join(["import rules broken:", *problems])
