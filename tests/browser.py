"""Debian's headless Chromium for the browser tests (the report, the web page)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def chromium() -> str:
    """The Chromium executable; a failure under CI (where `make browser` installs it), else a skip."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: `make browser` installs Debian's chromium")
        pytest.skip("chromium is not installed (make browser)")
    return exe


def chromium_env() -> dict[str, str]:
    """The environment for Chromium: its temporary folder is a short one, since Chromium puts a Unix socket
    there and a socket path is limited to 107 bytes (a long TMPDIR made it abort: "Socket path too long")."""
    short = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    return {**os.environ, "TMPDIR": short}
