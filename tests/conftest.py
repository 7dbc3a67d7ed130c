"""Shared fixtures. Real recordings live in ../shared/data (never copied into the repo).

In CI (CI=true) a test that needs them fails when they are missing; elsewhere it is skipped.
A CI run also fails on *any* skip of a test that needs shared data, Lava or the browser,
however the skip came about (``pytest_runtest_makereport`` below).

Every test session gets a ROS_DOMAIN_ID of its own (held by a lock file while the session
runs), so two test runs on one machine -- or a test run beside a live robot graph -- never
see each other's topics.
"""

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()

# fixtures whose tests need something outside the repo: skipping them hides a gap in CI
NEEDS_EXTERNAL = {"shared_data", "lava_python", "chromium"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _claim_domain_id() -> tuple[int, object]:
    """The first ROS domain id in 1..101 no other test session on this machine holds.

    Ids above 101 clash with ephemeral ports on Linux (DDS maps ids to UDP ports); 0 is the
    default every live graph uses, so tests stay off it.
    """
    lock_dir = Path(tempfile.gettempdir()) / "snn4-ros-domains"
    lock_dir.mkdir(exist_ok=True)
    start = os.getpid() % 101
    for k in range(101):
        dom = 1 + (start + k) % 101
        f = open(lock_dir / f"{dom}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return dom, f
    raise RuntimeError("no free ROS domain id for this test session (101 sessions running?)")


# before any test imports rclpy (the domain is read when a context is initialised)
if "SNN4_TEST_DOMAIN_ID" not in os.environ:
    _DOMAIN, _DOMAIN_LOCK = _claim_domain_id()
    os.environ["SNN4_TEST_DOMAIN_ID"] = str(_DOMAIN)
os.environ["ROS_DOMAIN_ID"] = os.environ["SNN4_TEST_DOMAIN_ID"]


def missing(msg: str) -> None:
    """Something a test needs is absent: a failure in CI (CI=true), a skip elsewhere."""
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, a skipped test that needs shared data, Lava or the browser is a failure."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and in_ci() and NEEDS_EXTERNAL & set(getattr(item, "fixturenames", ())):
        rep.outcome = "failed"
        why = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr
        rep.longrepr = (f"CI=true: {item.nodeid} needs "
                        f"{', '.join(sorted(NEEDS_EXTERNAL & set(item.fixturenames)))} "
                        f"and was skipped ({why})")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        missing(f"shared recordings not found at {SHARED}")
    return SHARED
