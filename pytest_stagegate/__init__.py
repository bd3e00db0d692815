"""pytest-stagegate: is this deployment safe to promote?"""

from __future__ import annotations

__version__ = "0.1.0"
