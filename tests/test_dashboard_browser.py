"""The live page in a real browser (Debian's headless Chromium through Playwright) while
`snn4 up --dashboard` runs the synthetic graph; the e-stop button stops the robot, the page
shows the current action and recent-window figures, fills the window and has a favicon.
Without a token the e-stop button is disabled and says why.

The screenshots are kept in out/test-artifacts/dashboard.png and dashboard-no-token.png.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from conftest import missing
from rclpy.executors import SingleThreadedExecutor

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_text(page, selector, pred, timeout=20.0, ex=None):
    """Poll an element's text (the page's CSP forbids Playwright's eval-based waits)."""
    t_end = time.monotonic() + timeout
    while True:
        text = page.inner_text(selector)
        if pred(text):
            return text
        assert time.monotonic() < t_end, f"{selector} stayed {text!r}"
        if ex is not None:
            ex.spin_once(timeout_sec=0.05)
        else:
            time.sleep(0.05)


def _int(text):
    return int(text.replace(",", ""))


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} missing (tools/ensure_browser.sh installs Debian's chromium)")
    return CHROMIUM


@pytest.mark.timeout(360)
def test_live_page_shows_the_graph_and_estop_stops_the_robot(chromium, tmp_path):
    from geometry_msgs.msg import TwistStamped
    from playwright.sync_api import sync_playwright

    port, domain = _free_port(), int(os.environ["ROS_DOMAIN_ID"])    # the session's own
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    env.pop("SNN4_DASHBOARD_TOKEN", None)
    up = subprocess.Popen([sys.executable, "-m", "snn4_ros.app.cli", "up", "--duration", "90",
                           "--source", "synthetic", "--simulated-motion",
                           "--dashboard", f"127.0.0.1:{port}", "--dashboard-token-file",
                           str(token)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("cmd_vel_watch", context=ctx)
    cmds = []
    node.create_subscription(TwistStamped, "/snn4/cmd_vel", lambda m: cmds.append(
        (time.monotonic(), m.twist.linear.x, m.twist.angular.z)), 50)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    url = f"http://127.0.0.1:{port}/"
    art = ROOT / "out" / "test-artifacts"
    art.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            # the dashboard's process runs at nice 10: slow to start on a busy machine
            t_end = time.monotonic() + 150
            while True:                                   # the graph takes a few seconds
                try:
                    page.goto(url, timeout=2000)
                    break
                except Exception:
                    assert up.poll() is None, up.stdout.read()
                    assert time.monotonic() < t_end, "dashboard never answered"
                    ex.spin_once(timeout_sec=0.5)
            wait_text(page, "#ready", lambda t: t == "ready", 90, ex)
            n0 = _int(page.inner_text("#ndec"))
            wait_text(page, "#ndec", lambda t: _int(t) > n0 + 10, 20, ex)   # numbers change
            wait_text(page, "#rate", lambda t: _int(t) > 1000, 20, ex)
            assert page.inner_text("#model") == "hybridnet-s"
            assert re.match(r"[a-z_]+ \(\d\.\d\d\)", page.inner_text("#decision"))
            assert len(page.query_selector_all("#probs .bar")) == 11
            assert len(page.query_selector_all("#spikes .bar")) >= 2
            assert "snn4_inference" in page.inner_text("#nodes")
            # figures over a recent window, start-up marked or past
            assert re.fullmatch(r"last \d+ s", page.inner_text("#latwin"))
            # the first 10 s after start are left out: samples appear once that has passed
            wait_text(page, "#latnote", lambda t: re.search(r"\d+ inference samples", t)
                      is not None, 40, ex)
            assert "mean over the last" in page.inner_text("#ratewin")
            assert page.request.get(url + "favicon.ico").status == 200
            _fills_the_viewport(page)
            assert page.is_enabled("#estop") and not page.is_visible("#estophelp")
            # wait for the robot to move, so that the e-stop has something to stop
            t_end = time.monotonic() + 40
            while not any(lin or ang for _, lin, ang in cmds[-25:]):
                ex.spin_once(timeout_sec=0.05)
                assert time.monotonic() < t_end, "the robot never moved"
            # the action being carried out is named (the controller's diagnostics, 1 Hz)
            wait_text(page, "#action", lambda t: re.fullmatch(r"[a-z_]+", t) is not None,
                      40, ex)
            # wrong token: refused, nothing changes
            page.fill("#token", "wrong")
            page.click("#estop")
            wait_text(page, "#estopmsg", lambda t: t.startswith("401"), 10, ex)
            assert page.inner_text("#estopstate") == "released"
            page.fill("#token", "s3cret-token")
            page.click("#estop")
            wait_text(page, "#estopmsg", lambda t: t == "e-stop engaged", 10, ex)
            t_stop = time.monotonic()
            wait_text(page, "#estopstate", lambda t: t == "ENGAGED", 10, ex)
            while time.monotonic() < t_stop + 2.0:
                ex.spin_once(timeout_sec=0.05)
            after = [(lin, ang) for t, lin, ang in cmds if t > t_stop + 0.2]
            assert len(after) > 20 and all(c == (0.0, 0.0) for c in after)
            assert page.inner_text("#cstate") == "estop"
            page.screenshot(path=str(art / "dashboard.png"), full_page=True)
            browser.close()
    finally:
        up.terminate()
        try:
            up.wait(timeout=15)
        except subprocess.TimeoutExpired:
            up.kill()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert (art / "dashboard.png").stat().st_size > 20_000


def _fills_the_viewport(page) -> None:
    """No band of empty page: the panels reach the bottom of the window, and the e-stop
    is on the first screen."""
    vh = page.viewport_size["height"]
    stop = page.query_selector("#estoppanel").bounding_box()
    assert stop["y"] + stop["height"] <= vh, stop
    main = page.query_selector("main").bounding_box()
    last = page.query_selector_all("main > section")[-1].bounding_box()
    assert main["y"] + main["height"] >= 0.97 * vh, main
    assert last["y"] + last["height"] >= 0.9 * vh, last


@pytest.mark.timeout(120)
def test_page_without_a_token_explains_the_disabled_estop(chromium):
    """The dashboard app alone (no graph): without a token the button is disabled and the
    page says how to get one, instead of answering a click with a raw 401."""
    from playwright.sync_api import sync_playwright

    from snn4_ros.dashboard import DashboardState, create_app
    from snn4_ros.dashboard.server import HttpGuard, ServerThread, server_config

    state = DashboardState(model={"preset": "hybridnet-s"})
    guard = HttpGuard()
    srv = ServerThread(server_config(create_app(state, None, guard=guard), "127.0.0.1", 0,
                                     guard))
    art = ROOT / "out" / "test-artifacts"
    art.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{srv.port}/", timeout=10_000)
            wait_text(page, "#ready", lambda t: t == "not ready", 20)
            assert page.is_disabled("#estop") and not page.is_visible("#token")
            help_text = page.inner_text("#estophelp")
            assert "without a token" in help_text and "--dashboard-token-file" in help_text
            assert "make demo" in help_text
            _fills_the_viewport(page)
            page.screenshot(path=str(art / "dashboard-no-token.png"))
            browser.close()
    finally:
        srv.stop()
