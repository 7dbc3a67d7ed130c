"""Shared fixtures. Real recordings live in ../shared/data (never copied into the repo).

In CI (CI=true) a test that needs them fails when they are missing; elsewhere it is skipped.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()


def missing(msg: str) -> None:
    """Something a test needs is absent: a failure in CI (CI=true), a skip elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        missing(f"shared recordings not found at {SHARED}")
    return SHARED
