"""Loaded by every server subprocess the tests start (PYTHONPATH): keep it on loopback."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.support.loopback_guard import install

install()
