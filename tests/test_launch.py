"""Every launch file under the real ``ros2 launch``, from a colcon install tree.

The package is colcon-built once per session into a temporary workspace (no symlinks into
the source tree), ``install/setup.bash`` is sourced, and each launch file runs as a user
would run it. The checks are the ones a robot integrator makes, over DDS: ``ros2 node list``,
``ros2 topic info``, ``ros2 param get/dump``, and messages on the topics (a subscriber in
this process, in the launches' ROS domain). Nothing here is a double: the camera is absent,
which is the point of the plain launch (it must wait for a driver and never move).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, missing

VENV_BIN = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv") / "bin"
SHARED = ROOT.parent / "shared"


def _tool(name: str) -> str | None:
    cand = VENV_BIN / name
    return str(cand) if cand.exists() else shutil.which(name)


def _domain() -> str:
    """The session's own ROS domain (tests/conftest.py claims one per test session): the
    launches, the CLI and the observer share it, and nothing else on the machine sees it."""
    return os.environ["SNN4_TEST_DOMAIN_ID"]


@pytest.fixture(scope="session")
def ros_ws(tmp_path_factory):
    """colcon build of the repository into a temporary workspace; the environment of its
    ``install/setup.bash``."""
    ros2, colcon = _tool("ros2"), _tool("colcon")
    if not (ros2 and colcon):
        missing("ros2 / colcon not installed: `make venv` installs them from "
                "../shared/ros2-src (tools/ros2_tools.sh); a robot has them from apt")
    ws = tmp_path_factory.mktemp("colcon_ws")
    t0 = time.monotonic()
    r = subprocess.run([colcon, "--log-base", str(ws / "log"), "build", "--base-paths", str(ROOT),
                        "--build-base", str(ws / "build"), "--install-base", str(ws / "install"),
                        "--event-handlers", "console_cohesion-", "summary-"],
                       cwd=ws, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}"))
    assert r.returncode == 0, r.stdout + r.stderr
    build_s = time.monotonic() - t0
    setup = ws / "install" / "setup.bash"
    out = subprocess.run(["bash", "-c", f"source {setup} && env -0"], capture_output=True,
                         check=True, env=dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}"))
    env = dict(kv.split("=", 1) for kv in out.stdout.decode().split("\0") if "=" in kv)
    env.update(ROS_DOMAIN_ID=_domain(), PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    env.pop("SNN4_LAVA_PYTHON", None)
    # the nodes run the installed copy, not the source tree
    where = subprocess.run([str(VENV_BIN / "python"), "-c",
                            "import snn4_ros, sys; print(snn4_ros.__file__)"], env=env, cwd=ws,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(ws / "install")), where
    print(f"colcon build into {ws}: {build_s:.1f} s")
    # the ros2 CLI's daemon for this session's domain (as on any ROS machine); ours, stopped
    subprocess.run([ros2, "daemon", "start"], env=env, cwd=ws, capture_output=True, timeout=60)
    yield {"ws": ws, "env": env, "ros2": ros2, "build_s": build_s}
    subprocess.run([ros2, "daemon", "stop"], env=env, cwd=ws, capture_output=True, timeout=60)


def _sigint_as_on_a_terminal() -> None:
    """In the launch's process before exec: SIGINT as a terminal gives it. A test run started
    in the background by a shell (``make test &``, nohup) ignores SIGINT, and an ignored
    signal is inherited: ``ros2 launch`` and its nodes then sat through the Ctrl-C of
    ``stop()`` (every launch test failed that way once)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launch:
    """``ros2 launch snn4_ros FILE ARGS...`` as a process; ``stop()`` is Ctrl-C."""

    def __init__(self, ros_ws, file: str, *args: str):
        self.log = ros_ws["ws"] / f"launch-{file}-{'-'.join(args)[:60].replace('/', '_')}.log"
        self.cmd = [ros_ws["ros2"], "launch", "snn4_ros", file, *args]
        self.proc = subprocess.Popen(self.cmd, env=ros_ws["env"], cwd=ros_ws["ws"],
                                     stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_sigint_as_on_a_terminal)

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.cmd} did not stop on SIGINT:\n{self.output()[-3000:]}")


def ros2(ros_ws, *args: str, cond=lambda out: True, timeout: float = 30.0) -> str:
    """``ros2 ARGS`` as a user types it, again until it succeeds and ``cond(output)``: the
    CLI's view of a graph that has just started fills in over a second or two."""
    t_end = time.monotonic() + timeout
    while True:
        r = subprocess.run([ros_ws["ros2"], *args], env=ros_ws["env"], cwd=ros_ws["ws"],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode == 0 and cond(r.stdout):
            return r.stdout
        if time.monotonic() > t_end:
            if r.returncode != 0:
                raise AssertionError(f"ros2 {' '.join(args)}: {r.stdout}{r.stderr}")
            return r.stdout
        time.sleep(0.5)


class Observer:
    """A node in this process, in the launches' domain, recording what arrives on topics."""

    n = 0

    def __init__(self, domain: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=int(domain))
        Observer.n += 1
        self.node = rclpy.create_node(f"launch_test_observer_{Observer.n}", context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.msgs: dict[str, list] = {}
        self.lock = threading.Lock()
        self._run = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while self._run:
            self.ex.spin_once(timeout_sec=0.05)

    def watch(self, topic: str, msg_type, best_effort: bool = False) -> list:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        got = self.msgs.setdefault(topic, [])
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                         else ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, lambda m: got.append(
            (time.monotonic(), m)), qos)
        return got

    def wait_for(self, cond, timeout: float, what: str, launches=()) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if cond():
                return
            for la in launches:
                assert la.proc.poll() is None, f"{la.cmd} ended:\n{la.output()[-4000:]}"
            time.sleep(0.2)
        logs = "\n".join(la.output()[-3000:] for la in launches)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def nodes(self) -> set[str]:
        return {(ns.rstrip("/") + "/" + n) for n, ns in self.node.get_node_names_and_namespaces()}

    def close(self):
        self._run = False
        self.thread.join(timeout=2)
        self.node.destroy_node()
        self.ex.shutdown()
        self.ctx.try_shutdown()


def twist_of(msg):
    """Twist of a TwistStamped or a Twist (cmd_vel_type:=stamped | twist)."""
    return getattr(msg, "twist", msg)


def is_zero(msg) -> bool:
    t = twist_of(msg)
    return all(v == 0.0 for v in (t.linear.x, t.linear.y, t.linear.z,
                                  t.angular.x, t.angular.y, t.angular.z))


# ------------------------------------------------------------------ bad arguments
BAD_ARGS = {
    "graph": (["graph:=no_such_graph"], "use one of"),
    "model": (["model:=no_such_model"], "model:='no_such_model' not found: use one of"),
    "device": (["device:=cuda"], "use device:=cpu"),
    "source": (["source:=/no/such/bag"], "no such bag or recording"),
    "cmd_vel_type": (["cmd_vel_type:=twisty"], "use stamped or twist"),
}


def test_a_bad_launch_argument_fails_at_once_saying_what_to_change(ros_ws):
    """Started all at once (each is a separate `ros2 launch`); none may start a node."""
    runs = {k: Launch(ros_ws, "perception.launch.py", "namespace:=bad_" + k, *args)
            for k, (args, _) in BAD_ARGS.items()}
    for k, la in runs.items():
        try:
            rc = la.wait(timeout=60)
        except subprocess.TimeoutExpired:
            la.stop()
            raise AssertionError(f"{k}: the launch kept running:\n{la.output()[-3000:]}")
        out = la.output()
        assert rc != 0, f"{k}: exit status 0\n{out}"
        assert BAD_ARGS[k][1] in out, f"{k}: no hint {BAD_ARGS[k][1]!r} in\n{out}"
        assert "process started" not in out, f"{k}: a node was started\n{out}"


# ------------------------------------------------------------------ two pipelines side by side
@pytest.fixture(scope="module")
def pipelines(ros_ws):
    """/plain: a plain launch (no camera driver running); /sim: source:=synthetic."""
    from geometry_msgs.msg import TwistStamped
    from vision_msgs.msg import Classification, Detection2DArray

    obs = Observer(ros_ws["env"]["ROS_DOMAIN_ID"])
    topics = {}
    for ns in ("plain", "sim"):
        topics[ns] = {"gesture": obs.watch(f"/{ns}/gesture", Classification),
                      "tracks": obs.watch(f"/{ns}/tracks", Detection2DArray),
                      "cmd_vel": obs.watch(f"/{ns}/cmd_vel", TwistStamped)}
    t0 = time.monotonic()
    plain = Launch(ros_ws, "perception.launch.py", "namespace:=plain")
    sim = Launch(ros_ws, "perception.launch.py", "namespace:=sim", "source:=synthetic")
    launches = (plain, sim)
    want = {"/plain/snn4_inference", "/plain/gesture_controller", "/sim/event_source",
            "/sim/snn4_inference", "/sim/gesture_controller"}
    try:
        obs.wait_for(lambda: want <= obs.nodes(), 120, f"nodes {want}", launches)
        obs.wait_for(lambda: len(topics["sim"]["gesture"]) >= 25, 90, "gestures on /sim",
                     launches)
        up_s = time.monotonic() - t0
        print(f"two pipelines up and /sim/gesture flowing after {up_s:.1f} s")
        yield {"obs": obs, "topics": topics, "plain": plain, "sim": sim}
    finally:
        for la in launches:
            if la.proc.poll() is None:
                la.stop()
        obs.close()


def test_plain_launch_waits_for_a_camera_driver_and_never_moves(ros_ws, pipelines):
    want = {"/plain/snn4_inference", "/plain/gesture_controller"}
    nodes = ros2(ros_ws, "node", "list", cond=lambda out: want <= set(out.split())).split()
    assert want <= set(nodes), nodes
    assert "/plain/event_source" not in nodes        # no built-in source unless asked
    info = ros2(ros_ws, "topic", "info", "/event_camera/events",
                cond=lambda out: "Subscription count: 1" in out)
    assert "Publisher count: 0" in info and "Subscription count: 1" in info, info
    cmds = pipelines["topics"]["plain"]["cmd_vel"]
    assert len(cmds) > 20                            # the controller publishes (zeros)
    assert all(is_zero(m) for _, m in cmds)
    assert all(m.header.frame_id for _, m in cmds)   # TwistStamped by default
    assert not pipelines["topics"]["plain"]["gesture"]


def test_synthetic_source_gives_gestures_but_no_motion_without_the_second_switch(
        ros_ws, pipelines):
    t = pipelines["topics"]["sim"]
    stamps = [ts for ts, _ in t["gesture"]]
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate > 5, f"/sim/gesture at {rate:.1f} Hz"
    classes = {max(m.results, key=lambda r: r.score).class_id for _, m in t["gesture"]}
    assert classes and "" not in classes
    assert all(m.header.frame_id == "event_camera" for _, m in t["gesture"])
    for _, arr in t["tracks"]:                       # the camera's pixels, its frame
        assert arr.header.frame_id == "event_camera"
        for d in arr.detections:
            assert 0 <= d.bbox.center.position.x < 128 and 0 <= d.bbox.center.position.y < 128
            assert d.bbox.size_x > 0 and d.bbox.size_y > 0
    assert t["cmd_vel"] and all(is_zero(m) for _, m in t["cmd_vel"])
    assert ros2(ros_ws, "param", "get", "/sim/gesture_controller", "motion_enabled").strip().endswith("False")


def test_two_namespaced_pipelines_do_not_see_each_others_topics(ros_ws, pipelines):
    info = ros2(ros_ws, "topic", "info", "-v", "/sim/gesture",
                cond=lambda out: "Subscription count: 0" not in out)
    assert "Publisher count: 1" in info and "Node name: snn4_inference" in info
    assert "Node namespace: /sim" in info and "/plain" not in info, info
    topics = ros2(ros_ws, "topic", "list",
                  cond=lambda out: "/plain/cmd_vel" in out and "/sim/cmd_vel" in out).split()
    for name in ("gesture", "tracks", "cmd_vel"):
        assert f"/plain/{name}" in topics and f"/sim/{name}" in topics, topics
    assert "/snn4/gesture" not in topics and "/gesture" not in topics
    assert "/sim/event_camera/events" in topics    # sim's source stays in its namespace
    assert not pipelines["topics"]["plain"]["gesture"]


def test_parameters_are_visible_and_dump_as_ros_parameters_yaml(ros_ws, pipelines, tmp_path):
    got = ros2(ros_ws, "param", "get", "/sim/snn4_inference", "model")
    assert "hybridnet_gesture_synth" in got
    dumped = yaml.safe_load(ros2(ros_ws, "param", "dump", "/sim/gesture_controller"))
    p = dumped["/sim/gesture_controller"]["ros__parameters"]
    assert p["max_linear"] == 0.3 and p["stamped"] is True and p["use_sim_time"] is False
    src = yaml.safe_load(ros2(ros_ws, "param", "dump", "/sim/event_source"))
    assert src["/sim/event_source"]["ros__parameters"]["event_message_time_threshold"] == 0.002
    pipelines["dumped"] = dumped


def test_ctrl_c_stops_both_cleanly_with_a_zero_last(ros_ws, pipelines):
    for ns in ("plain", "sim"):
        la = pipelines[ns]
        assert la.stop() == 0, la.output()[-3000:]
        out = la.output()
        assert "escalating to" not in out and "has died" not in out, out[-3000:]
    time.sleep(0.5)
    for ns in ("plain", "sim"):
        cmds = pipelines["topics"][ns]["cmd_vel"]
        assert is_zero(cmds[-1][1])


# ------------------------------------------------------------------ motion, asked twice
def test_simulated_motion_needs_the_second_switch_and_takes_a_params_file(ros_ws, tmp_path):
    """source:=synthetic simulated_motion:=true moves (as Twist here), within the limits of a
    `ros2 param dump`-style file given as params_file:=, through the cmd_vel guard
    (cmd_vel_guard:=true: the only publisher of cmd_vel); Ctrl-C leaves a zero."""
    from geometry_msgs.msg import Twist

    pfile = tmp_path / "controller.yaml"
    pfile.write_text(yaml.safe_dump({"/**/gesture_controller": {"ros__parameters": {
        "max_linear": 0.2, "min_confidence": 0.6}}}))
    obs = Observer(ros_ws["env"]["ROS_DOMAIN_ID"])
    cmds = obs.watch("/moving/cmd_vel", Twist)
    la = Launch(ros_ws, "perception.launch.py", "namespace:=moving", "source:=synthetic",
                "simulated_motion:=true", "cmd_vel_type:=twist", f"params_file:={pfile}",
                "cmd_vel_guard:=true")
    try:
        obs.wait_for(lambda: any(not is_zero(m) for _, m in cmds), 120,
                     "a non-zero command on /moving/cmd_vel", [la])
        assert "0.2" in ros2(ros_ws, "param", "get", "/moving/gesture_controller",
                             "max_linear")
        info = ros2(ros_ws, "topic", "info", "-v", "/moving/cmd_vel",
                    cond=lambda out: "Publisher count: 1" in out)
        assert "Publisher count: 1" in info and "Node name: cmd_vel_guard" in info, info
        assert "Node name: gesture_controller" in ros2(
            ros_ws, "topic", "info", "-v", "/moving/cmd_vel_unguarded",
            cond=lambda out: "gesture_controller" in out)
        assert all(abs(m.linear.x) <= 0.2 + 1e-9 for _, m in cmds)
        assert la.stop() == 0
        time.sleep(0.5)
        assert is_zero(cmds[-1][1]), cmds[-1][1]
    finally:
        la.stop()
        obs.close()


# ------------------------------------------------------------------ the other launch files
def test_every_launch_file_is_tested():
    tested = {"perception.launch.py", "perception_from_bag.launch.py", "loihi.launch.py"}
    assert {p.name for p in (ROOT / "launch").glob("*.launch.py")} == tested


def test_bag_launch_plays_a_recorded_bag_without_moving(ros_ws, shared_data):
    from geometry_msgs.msg import TwistStamped
    from vision_msgs.msg import Classification, Detection2DArray

    obs = Observer(ros_ws["env"]["ROS_DOMAIN_ID"])
    cls = obs.watch("/bag/gesture", Classification)
    det = obs.watch("/bag/tracks", Detection2DArray)
    cmds = obs.watch("/bag/cmd_vel", TwistStamped)
    # the bag lasts 1.2 s (~30 decisions): played once, it raced this observer's discovery
    # of the inference node's publisher (and, on a loaded machine, the inference node's
    # shedding). Looped, its time continuing, it plays until the observer has what it checks;
    # more gestures than one pass can give show that the loop goes on past the bag's end.
    la = Launch(ros_ws, "perception_from_bag.launch.py",
                f"bag:={shared_data / 'rosbag2' / 'evt3_trigger'}",
                "namespace:=bag", "camera_name:=prophesee", "loop:=true")
    try:
        obs.wait_for(lambda: len(cls) >= 40, 120, "gestures from the looped bag", [la])
        obs.wait_for(lambda: len(cmds) >= 10, 10, "commands", [la])
        assert all(m.header.frame_id for _, m in cls)
        for _, arr in det:                 # the bag's sensor, not the model's 128x128 grid
            for d in arr.detections:
                assert d.bbox.size_x > 0
        assert all(is_zero(m) for _, m in cmds)     # recorded input: no motion
        assert la.stop() == 0, la.output()[-3000:]
    finally:
        la.stop()
        obs.close()


def test_loihi_launch_runs_from_the_install_tree(ros_ws):
    """loihi.launch.py from the colcon install tree: the Lava bridge (Python 3.10, its own
    venv, started with the cleaned environment) and the inference node with backend lava."""
    from vision_msgs.msg import Classification

    if not (ROOT / "hw" / ".lava-venv" / "bin" / "python").exists():
        missing("the Lava venv is missing: make lava-env")
    obs = Observer(ros_ws["env"]["ROS_DOMAIN_ID"])
    cls = obs.watch("/loihi/gesture", Classification)
    la = Launch(ros_ws, "loihi.launch.py", "namespace:=loihi", "source:=synthetic")
    try:
        obs.wait_for(lambda: {"/loihi/lava_bridge", "/loihi/snn4_inference"} <= obs.nodes(),
                     120, "the bridge and the inference node", [la])
        obs.wait_for(lambda: len(cls) >= 10, 120, "gestures through Lava", [la])
        # the bridge runs the installed hw/lava_run.py, in the environment bridge_command
        # cleaned of this venv (its Python 3.10 rclpy must not load our 3.11 libraries)
        pid = int(re.search(r"\[lava_bridge-\d+\]: process started with pid \[(\d+)\]",
                            la.output()).group(1))
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        share = ros_ws["ws"] / "install" / "snn4_ros" / "share" / "snn4_ros"
        assert argv[1].decode() == str(share / "hw" / "lava_run.py"), argv
        assert b"bridge" in argv and b"__ns:=/loihi" in argv
        env = dict(kv.split(b"=", 1) for kv in
                   Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        assert b"PYTHONPATH" not in env and b"VIRTUAL_ENV" not in env
        assert str(VENV_BIN.parent).encode() not in env.get(b"LD_LIBRARY_PATH", b"")
        assert la.stop() == 0, la.output()[-3000:]
    finally:
        la.stop()
        obs.close()


# ------------------------------------------------------------------ packaging
def test_colcon_builds_interfaces_only_when_asked_and_never_over_a_ros_install(tmp_path):
    """`colcon build` of the repository is the snn4_ros package alone (colcon stops at the
    root package); interfaces/* are built when named (--base-paths . interfaces), and their
    CMake refuses to shadow a complete package installed elsewhere (apt's vision_msgs)."""
    colcon = _tool("colcon")
    if not colcon:
        missing("colcon not installed: make venv (tools/ros2_tools.sh)")

    def names(*paths):
        r = subprocess.run([colcon, "list", "--names-only", "--base-paths", *paths], cwd=ROOT,
                           capture_output=True, text=True, check=True)
        return sorted(r.stdout.split())

    assert names(".") == ["snn4_ros"]
    assert names(".", "interfaces") == ["event_camera_msgs", "snn4_msgs", "snn4_ros",
                                        "vision_msgs"]
    apt = tmp_path / "opt_ros_jazzy"
    (apt / "share" / "vision_msgs").mkdir(parents=True)
    (apt / "share" / "vision_msgs" / "package.xml").write_text("<package/>")
    r = subprocess.run(["cmake", "-S", str(ROOT / "interfaces" / "vision_msgs"),
                        "-B", str(tmp_path / "build"), "-DCMAKE_INSTALL_PREFIX=" + str(tmp_path / "install")],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, AMENT_PREFIX_PATH=f"{apt}:{VENV_BIN.parent}"))
    assert r.returncode != 0
    assert f"vision_msgs is already installed in {apt}" in " ".join(r.stderr.split())
    assert "--packages-skip vision_msgs" in r.stderr
