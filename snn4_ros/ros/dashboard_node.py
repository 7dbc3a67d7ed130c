"""``dashboard`` node: the HTTP health/metrics endpoints and the live page, fed by topics.

Subscribes to ``/diagnostics`` (counters, latency samples, spike rates, controller state
and action, every node's rejection counters), ``/snn4/gesture``, ``/snn4/tracks``,
``cmd_vel`` (``Twist`` or ``TwistStamped``: whichever the graph's publishers offer, found by
discovery) and ``/snn4/debug/event_frame`` (the inference node renders that image only while
someone subscribes), and calls the controller's ``~/estop`` service for the page's e-stop
button. It serves the FastAPI app of ``snn4_ros.dashboard`` with uvicorn in a thread,
behind ``snn4_ros.dashboard.server``'s guards (header and body timeouts, a connection cap
that evicts idle connections, an in-flight limit that spares the e-stop, Host checks).

It is its own process in ``snn4 up --dashboard`` as under ``ros2 launch``: HTTP clients
then never compete with the inference for the interpreter lock, and a dashboard that falls
over cannot take the controller with it. The token comes from ``token_file`` or the
``SNN4_DASHBOARD_TOKEN`` environment variable, never from a parameter (parameters are
readable by anyone on the ROS graph).
"""

from __future__ import annotations

import os
import threading
import time

from rclpy.node import Node

from ..dashboard import DashboardState, check_bind, create_app
from ..dashboard.server import HttpGuard, ServerThread, server_config
from .common import declare
from .topics import DEBUG_FRAME_TOPIC, DEBUG_IMAGE_QOS, GESTURE_TOPIC, RESULT_QOS, TRACKS_TOPIC

LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
TWIST_TYPES = {"geometry_msgs/msg/Twist": "Twist",
               "geometry_msgs/msg/TwistStamped": "TwistStamped"}


def read_token(path: str) -> str | None:
    if path:
        with open(path) as f:
            tok = f.read().strip()
        if not tok:
            raise ValueError(f"token file {path} is empty")
        return tok
    return os.environ.get("SNN4_DASHBOARD_TOKEN") or None


def model_card_summary(name: str, preset: str | None) -> dict:
    """Headline fields of the model card (when this machine has the checkpoint). Read as
    plain JSON where ``models.zoo`` looks (without importing ``snn4_ros.models``: that pulls
    in torch, ~25 MB and seconds of start-up the dashboard's process does not need)."""
    import json
    import sys
    from pathlib import Path

    out = {"preset": preset, "name": name or None}
    dirs = [Path(os.environ["SNN4_MODELS"])] if os.environ.get("SNN4_MODELS") else []
    dirs += [Path(__file__).resolve().parents[2] / "models",
             Path(sys.prefix) / "share" / "snn4_ros" / "models"]
    p = Path(name) if name else None
    cands = ([p.with_suffix(".json")] if p is not None else []) + \
        ([d / f"{name}.json" for d in dirs] if name else [])
    for c in cands:
        try:
            card = json.loads(c.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict):
            out.update({k: card[k] for k in ("parameters", "classes", "created") if k in card})
            out["metrics"] = card.get("metrics", {})
            break
    return out


class DashboardNode(Node):
    """Feeds ``DashboardState`` from the graph's topics and serves ``create_app`` with
    uvicorn in a thread; the e-stop button calls the controller's service."""

    def __init__(self, **kwargs):
        super().__init__("dashboard", **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_srvs.srv import SetBool
        from vision_msgs.msg import Classification, Detection2DArray

        self.host = declare(self, "host", "127.0.0.1", "HTTP bind address (a non-loopback "
                            "address needs a token)")
        self.port = declare(self, "port", 8080, "HTTP port", 0, 65535)
        token_file = declare(self, "token_file", "", "file holding the bearer token for "
                             "mutating endpoints (else SNN4_DASHBOARD_TOKEN)")
        freshness = declare(self, "freshness_s", 2.5, "events must have arrived this recently "
                            "for /readyz", 0.1, 60.0)
        estop_srv = declare(self, "estop_service", "gesture_controller/estop",
                            "the controller's SetBool e-stop service")
        hosts = declare(self, "allowed_hosts", "", "comma-separated DNS names the page may be "
                        "reached by besides IP addresses, localhost and this host's name "
                        "(DNS-rebinding guard)")
        nice = declare(self, "nice", 10, "CPU niceness added to this process: HTTP clients "
                       "yield to perception and control", 0, 19)
        if nice:
            os.nice(nice)
        self.token = read_token(token_file)
        check_bind(self.host, self.token)
        self.state = DashboardState(freshness_s=freshness)
        self.geometry = (128, 128)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.create_subscription(Classification, GESTURE_TOPIC, self._on_cls, RESULT_QOS)
        self.create_subscription(Detection2DArray, TRACKS_TOPIC, self._on_det, RESULT_QOS)
        self._cmd_topic = self.resolve_topic_name("cmd_vel")
        self._cmd_subs: dict = {}
        self._find_cmd_vel()
        self.create_timer(1.0, self._find_cmd_vel)
        self.create_subscription(Image, DEBUG_FRAME_TOPIC, self._on_frame, DEBUG_IMAGE_QOS)
        self.estop_client = self.create_client(SetBool, estop_srv)
        guard = HttpGuard(allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()))
        app = create_app(self.state, self.token, on_estop=self._estop, guard=guard)
        self.http = ServerThread(server_config(app, self.host, self.port, guard))
        self.url = f"http://{self.host}:{self.http.port}/"
        self.get_logger().info(f"dashboard on {self.url}"
                               + ("" if self.token else " (no token: e-stop disabled)"))

    def destroy_node(self):
        self.http.stop()
        return super().destroy_node()

    def _find_cmd_vel(self) -> None:
        """Subscribe to cmd_vel with the type its publishers offer: Twist, TwistStamped or
        both (a subscription of the other type would never match, and says nothing)."""
        from geometry_msgs import msg as gm

        for info in self.get_publishers_info_by_topic(self._cmd_topic):
            name = TWIST_TYPES.get(info.topic_type)
            if name and name not in self._cmd_subs:
                self._cmd_subs[name] = self.create_subscription(
                    getattr(gm, name), self._cmd_topic, self._on_cmd, 10)
                self.get_logger().info(f"following {self._cmd_topic} ({info.topic_type})")

    # ------------------------------------------------------------ topics -> state
    def _on_diag(self, msg) -> None:
        for st in msg.status:
            values = {kv.key: kv.value for kv in st.values}
            node = st.name.split(":")[0]
            level = LEVELS.get(st.level[0] if isinstance(st.level, bytes) else int(st.level),
                               "?")
            self.state.on_node(node, level, st.message, {k: v for k, v in values.items()
                                                         if k != "latency_ms_recent"})
            if "bins" in values and "backend" in values:             # the inference node
                self._from_inference(values)
            if "nonzero_commands" in values:                         # the controller
                action = values.get("action")
                self.state.on_controller(values.get("state", "?"),
                                         None if action in (None, "", "None") else action,
                                         values.get("estop") == "True")
        self.state.invalidate()

    def _from_inference(self, v: dict) -> None:
        s = self.state
        s.set_totals(int(v["events"]), int(v["packets"]), int(v.get("dropped_packets", 0)),
                     int(v.get("seq_gaps", 0)))
        s.shed_fraction = float(v.get("shed_fraction", 0.0))
        s.shed_fraction_recent = float(v.get("shed_fraction_recent", 0.0))
        s.backend = v.get("backend", s.backend)
        if s.model.get("preset") != v.get("model") or "name" not in s.model:
            # known at once; the card's details in a thread: loading it imports torch,
            # which took 25 s on a busy machine, with every callback (and /readyz's view
            # of the graph) waiting behind it
            s.model = {"preset": v.get("model"), "name": v.get("model_name") or None}
            threading.Thread(target=self._load_card, daemon=True,
                             args=(v.get("model_name", ""), v.get("model"))).start()
        if "model_geometry" in v:
            w, _, h = v["model_geometry"].partition("x")
            self.geometry = (int(w), int(h))
        s.add_latencies([float(ms) / 1e3 for ms in
                         filter(None, v.get("latency_ms_recent", "").split(";"))])
        s.spike_rate = {k.split(".", 1)[1]: float(x) for k, x in v.items()
                        if k.startswith("spike_rate.")}

    def _load_card(self, name: str, preset: str | None) -> None:
        card = model_card_summary(name, preset)
        if self.state.model.get("preset") == preset:
            self.state.model = card
            self.state.invalidate()

    def _on_cls(self, msg) -> None:
        if not msg.results:
            return
        top = max(msg.results, key=lambda r: r.score)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        now = self.get_clock().now().nanoseconds * 1e-9
        e2e = now - stamp if 0 <= now - stamp < 60 else None     # stamps on this clock only
        self.state.on_decision(top.class_id, float(top.score), e2e_s=e2e)
        self.state.on_scores({r.class_id: float(r.score) for r in msg.results})

    def _on_det(self, msg) -> None:
        for d in msg.detections:
            if d.results:
                self.state.on_scores(self.state.probs, {
                    "x": d.bbox.center.position.x, "y": d.bbox.center.position.y,
                    "visibility": float(d.results[0].hypothesis.score),
                    "width": self.geometry[0], "height": self.geometry[1]})

    def _on_cmd(self, msg) -> None:
        tw = getattr(msg, "twist", msg)                 # TwistStamped or Twist
        self.state.on_command(tw.linear.x, tw.angular.z)

    def _on_frame(self, msg) -> None:
        if msg.encoding == "mono8" and msg.step == msg.width:
            self.state.on_frame(msg.width, msg.height, bytes(msg.data))

    # ------------------------------------------------------------ HTTP -> controller
    def _estop(self, engage: bool) -> bool:
        """Blocking (runs in the HTTP worker pool): call the controller's e-stop service."""
        from std_srvs.srv import SetBool

        if not self.estop_client.wait_for_service(timeout_sec=2.0):
            self.get_logger().error("e-stop requested but the controller's service is absent")
            return False
        fut = self.estop_client.call_async(SetBool.Request(data=bool(engage)))
        t_end = time.monotonic() + 2.0
        while not fut.done() and time.monotonic() < t_end:
            time.sleep(0.01)
        ok = fut.done() and fut.result() is not None and fut.result().success
        self.get_logger().warn(f"e-stop {'engaged' if engage else 'released'} from the "
                               f"dashboard" if ok else "e-stop request not confirmed")
        return bool(ok)


def main(args=None) -> None:
    from .lifecycle import spin_node

    spin_node(DashboardNode, args)


if __name__ == "__main__":
    main()
