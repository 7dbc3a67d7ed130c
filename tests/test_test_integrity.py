"""The test suite's own guarantees: its own ROS domain, and no silent skips in CI."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_session_has_its_own_ros_domain():
    dom = int(os.environ["ROS_DOMAIN_ID"])
    assert 1 <= dom <= 101 and os.environ["SNN4_TEST_DOMAIN_ID"] == str(dom)
    lock = Path("/tmp/snn4-ros-domains") / f"{dom}.lock"
    import fcntl
    with open(lock, "w") as f:                  # held by this session: a second one fails
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = False
        except OSError:
            held = True
    assert held


def _run_pytest(tmp_path, body, ci):
    (tmp_path / "test_x.py").write_text(textwrap.dedent(body))
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    env = dict(os.environ, CI="true" if ci else "")
    env.pop("SNN4_TEST_DOMAIN_ID", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_ci_fails_on_a_skip_of_a_test_that_needs_external_things(tmp_path):
    body = """
        import pytest

        @pytest.fixture
        def chromium():
            pytest.skip("no browser here")

        def test_needs_browser(chromium):
            assert chromium

        def test_plain_skip_is_fine():
            pytest.skip("optional")
    """
    ci = _run_pytest(tmp_path, body, ci=True)
    # a skip in a fixture turns into an error (setup), in the test body into a failure
    assert ci.returncode == 1 and "1 skipped, 1 error" in ci.stdout, ci.stdout
    assert "needs chromium and was skipped" in ci.stdout
    local = _run_pytest(tmp_path, body, ci=False)
    assert local.returncode == 0 and "2 skipped" in local.stdout, local.stdout
