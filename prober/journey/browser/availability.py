"""Whether browser checks can run here: the Playwright package and Chromium installed.

Apart from the engine so that ``prober validate`` asks without importing asyncio's
subprocess machinery or Playwright (finding a package is not importing it).
"""

from __future__ import annotations

import importlib.util
import os


def missing_browser(executable: str) -> str | None:
    """Why browser checks cannot run here (with the fix), or None when they can."""
    # Found, not imported: importing Playwright costs `prober validate` about 100 ms.
    if importlib.util.find_spec("playwright") is None:
        return ("the Python package playwright is not installed: install bank-prober with its dependencies "
                "(`pip install --require-hashes -r requirements/runtime.txt`)")
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return (f"Chromium is not installed at {executable}: install Debian's chromium (`apt-get install chromium`) "
                "or set [daemon] chromium to its path")
    return None
