"""The parameters each node declares, as data: names, types, ranges, choices.

Why a table beside the nodes' own ``declare`` calls: rclpy silently ignores an override for a
parameter nobody declares, so a misspelt safety limit (``max_linar``) in ``--param``, a
params file or the graph YAML would run with the default; and a wrong type or an out-of-range
value only fails inside a node's constructor, after the model has loaded, as a traceback.
With the table every such mistake is caught before anything starts, in one line with a
"did you mean". ``tests/test_parameters.py`` instantiates every node and checks that what it
declares is exactly this table (names, types, ranges, defaults), so the two cannot drift:
a node that gains or renames a parameter fails that test until the table says the same.

Keys are the nodes' executables (what the graph description's ``executable`` names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..events.errors import UserError, did_you_mean
from ..models.zoo import REAL_MODEL
from ..runtime.backlog import DEFAULT_EVENT_CAP


class ParameterError(UserError):
    """A node or parameter name that does not exist, or a value of the wrong type or range."""


@dataclass(frozen=True)
class Param:
    type: type                       # bool, int, float or str (rclpy's scalar types)
    default: object
    description: str
    range: tuple | None = None       # (low, high), inclusive, for int and float
    choices: tuple | None = None     # the valid strings, where there is a fixed set

    def wants(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = {bool: "true or false", int: "an integer", float: "a number",
                str: "a string"}[self.type]
        if self.range is not None:
            kind += f" in [{self.range[0]}, {self.range[1]}]"
        return kind


_ENCODINGS = ("evt3", "libcaer_cmp", "libcaer", "mono")
_CONTROLLER_FLOATS = {"min_confidence": 0.8, "deadman_s": 0.5, "hold_s": 0.5,
                      "max_linear": 0.3, "max_angular": 1.0, "max_decision_age_s": 0.5}

NODE_PARAMETERS: dict[str, dict[str, Param]] = {
    "event_source": {
        "source": Param(str, "synthetic", "source spec: synthetic[:seed=S], camera[:SERIAL], or "
                        "a bag/recording path"),
        "encoding": Param(str, "evt3", "EventPacket encoding", choices=_ENCODINGS),
        "event_message_time_threshold": Param(float, 0.002, "close a packet after this much "
                                              "sensor time (s)", (1e-4, 1.0)),
        "event_message_size_threshold": Param(int, 262144, "close a packet at this payload "
                                              "size (bytes)", (1024, 1 << 24)),
        "realtime": Param(bool, True, "pace to the wall clock"),
        "loop": Param(bool, False, "play a recording again from its start when it ends, its "
                      "time continuing (ros2 bag play --loop)"),
        "frame_id": Param(str, "event_camera", "header frame id"),
        "topic": Param(str, "events", "output topic (relative: remap events, or launch with "
                       "camera_name:=)"),
        "wait_for_subscriber": Param(bool, True, "start a recording or the synthetic scene "
                                     "only once the events topic has a subscriber"),
    },
    "snn4_inference": {
        "model": Param(str, REAL_MODEL, "shipped model name or checkpoint path (the simulator's: "
                       "hybridnet_gesture_synth)"),
        "backend": Param(str, "torch", "torch (this process) or lava (the Lava bridge node)",
                         choices=("torch", "lava")),
        "device": Param(str, "cpu", "cpu or cuda"),
        "threads": Param(int, 1, "torch CPU threads", (1, 64)),
        "rescale": Param(bool, True, "map other sensor sizes onto the model's"),
        "lava_timeout_s": Param(float, 2.0, "wait this long for the bridge's answer "
                                "(backend lava)", (0.01, 60.0)),
        "events_topic": Param(str, "events", "input EventPacket topic"),
        "queue_size": Param(int, 10000, "packets held at most (a memory guard: latency is "
                            "bounded by deadline_s, not by this)", (1, 1000000)),
        "deadline_s": Param(float, 0.04, "data older than the newest by more than this is "
                            "shed (counted; the network's state is carried), and of a backlog "
                            "only the newest bin is decided; 0 processes everything in order "
                            "(lossless replay)", (0.0, 60.0)),
        "max_events_per_bin": Param(int, DEFAULT_EVENT_CAP, "cap events per time bin by "
                                    "counted uniform subsampling (0: no cap)", (0, 1 << 30)),
        "decision_window": Param(int, 0, "latest time bins the bridge and heads read (0: the "
                                 "model's window; fewer answer sooner after a gesture "
                                 "starts)", (0, 1024)),
        "max_packet_span_s": Param(float, 1.0, "reject a packet whose events span longer "
                                   "than this (seconds)", (0.001, 3600.0)),
        "max_bins_per_packet": Param(int, 64, "most time bins stepped for one packet",
                                     (1, 100000)),
        "confirm_packets": Param(int, 3, "consecutive packets that confirm a new timeline "
                                 "or sensor size", (1, 1000)),
        "max_packet_bytes": Param(int, 4 << 20, "reject (count) packets with a larger "
                                  "payload", (1024, 1 << 31)),
        "max_queue_bytes": Param(int, 64 << 20, "payload bytes held before the oldest packet is "
                                 "dropped (a memory guard)", (1 << 16, 1 << 34)),
        "worker_stall_s": Param(float, 2.0, "a worker busy this long on one packet is "
                                "reported as stuck (ERROR)", (0.1, 600.0)),
        "ingest": Param(str, "direct", "how packets reach the worker: direct (it takes every "
                        "queued packet from DDS itself at each wake-up) or executor (one "
                        "subscription callback per packet)", choices=("direct", "executor")),
        "freeze_gc": Param(bool, True, "move everything alive after start-up (torch, the "
                           "model) out of the garbage collector's reach (a full collection "
                           "of it stalls the worker for 100+ ms on a slow CPU)"),
        "thin_floor_events": Param(int, 20_000, "while batches fall behind, decode only part "
                                   "of the fresh packets (the rest skimmed, counted as "
                                   "thinned), never fewer events per bin than this; 0: never "
                                   "thin", (0, 1 << 30)),
        "prewarm": Param(bool, True, "rehearse the model step (state untouched) when idle "
                         "just before a bin closes, so the step that counts runs from warm "
                         "caches (about half its time on a slow or shared CPU, one more "
                         "step's CPU per bin); never while behind"),
        "prewarm_max_busy": Param(float, 0.5, "no prewarm while the worker was busy more "
                                  "than this share of the last ~0.5 s (a CPU so starved that "
                                  "the extra step delays the real ones); 1: always",
                                  (0.0, 1.0)),
    },
    "gesture_controller": {
        "actions_file": Param(str, "", "YAML with controller parameters and a gesture -> "
                              "action mapping (empty: defaults)"),
        **{name: Param(float, default, f"controller {name}", (0.0, 100.0))
           for name, default in _CONTROLLER_FLOATS.items()},
        "debounce": Param(int, 3, "consecutive agreeing decisions", (1, 100)),
        "agree_window": Param(int, 0, "0: debounce in a row; N: debounce of the last N "
                              "decisions agree", (0, 200)),
        "rate_hz": Param(float, 50.0, "command rate", (1.0, 1000.0)),
        "stamped": Param(bool, True, "publish geometry_msgs/TwistStamped (Jazzy's "
                         "diff_drive_controller; stamped with the events' time) instead of "
                         "Twist"),
        "frame_id": Param(str, "base_link", "TwistStamped header frame"),
        "motion_enabled": Param(bool, True, "false: publish only zeros (simulated or recorded "
                                "input without a second request for motion); read-only"),
        "steady_deadman_s": Param(float, 0.5, "zero when no fresh decision arrived for this "
                                  "long in real (steady) time, whatever the node clock does",
                                  (0.01, 1e6)),
        "cmd_vel_topic": Param(str, "cmd_vel", "output topic"),
    },
    "dashboard": {
        "host": Param(str, "127.0.0.1", "HTTP bind address (a non-loopback address needs a "
                      "token)"),
        "port": Param(int, 8080, "HTTP port", (0, 65535)),
        "token_file": Param(str, "", "file holding the bearer token for mutating endpoints"),
        "freshness_s": Param(float, 2.5, "events must have arrived this recently for /readyz",
                             (0.1, 60.0)),
        "estop_service": Param(str, "gesture_controller/estop", "the controller's SetBool "
                               "e-stop service"),
        "allowed_hosts": Param(str, "", "comma-separated DNS names the page may be reached by "
                               "besides IP addresses, localhost and this host's name "
                               "(DNS-rebinding guard)"),
        "nice": Param(int, 10, "CPU niceness added to the dashboard's process", (0, 19)),
    },
    "cmd_vel_guard": {               # not in the graph: between the controller and the base
        "timeout_s": Param(float, 0.25, "input silent this long (real time) -> zero commands",
                           (0.01, 60.0)),
        "zero_for_s": Param(float, 1.0, "send zeros this long after the input fell silent, "
                            "then stay quiet like the input", (0.0, 3600.0)),
        "rate_hz": Param(float, 50.0, "watchdog rate (zeros go out at this rate)",
                         (1.0, 1000.0)),
        "stamped": Param(bool, True, "geometry_msgs/TwistStamped in and out (false: Twist), "
                         "as the controller's stamped"),
        "frame_id": Param(str, "base_link", "frame of the zero TwistStamped until an input "
                          "names one"),
    },
    "lava_bridge": {                 # hw/snn4_lava/bridge.py, in the Lava venv
        "model": Param(str, "", "model base path (MODEL.lava.safetensors / .json)"),
        "board_host": Param(str, "", "Loihi 2 board host (only with lava-loihi installed)"),
    },
}
# declared by rclpy itself on every node
COMMON_PARAMETERS = {
    "use_sim_time": Param(bool, False, "use /clock instead of the wall clock"),
    "start_type_description_service": Param(bool, True, "serve ~/get_type_description"),
}


def parameters_of(executable: str) -> dict[str, Param]:
    return {**COMMON_PARAMETERS, **NODE_PARAMETERS[executable]}


def check_value(spec: Param, value, what: str):
    """``value`` as the parameter's type (an integer where a float is wanted becomes a float,
    as YAML and JSON write ``1`` for ``1.0``), or a ParameterError naming ``what``."""
    ok = True
    if spec.type is bool:
        ok = isinstance(value, bool)
    elif spec.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec.type is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif spec.type is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)       # a numeric frame id or host part, written unquoted
        ok = isinstance(value, str)
    if ok and spec.range is not None:
        ok = spec.range[0] <= value <= spec.range[1]
    if ok and spec.choices is not None:
        ok = value in spec.choices
    if not ok:
        raise ParameterError(f"{what}: wants {spec.wants()}, got {value!r}")
    return value


def check_parameters(params: dict, executables: dict[str, str], where: str) -> dict:
    """Check ``{node: {name: value}}`` against the nodes of a graph (``executables``: node
    name -> executable) and return it with values converted to their types. ``where``
    names the origin in messages (``--param``, a file)."""
    out: dict[str, dict] = {}
    for node, values in params.items():
        if node not in executables:
            raise ParameterError(
                f"{where}: no node {node!r} in the graph{did_you_mean(node, executables)} "
                f"(nodes: {', '.join(executables)})")
        exe = executables[node]
        if exe not in NODE_PARAMETERS:
            raise ParameterError(f"{where}: node {node!r} runs {exe!r}, which is not one of "
                                 f"the executables {', '.join(NODE_PARAMETERS)}")
        specs = parameters_of(exe)
        if not isinstance(values, dict):
            raise ParameterError(f"{where}: the parameters of {node!r} must be a mapping of "
                                 f"name: value, got {values!r}")
        for name, value in values.items():
            if name not in specs:
                elsewhere = [n for n, e in executables.items() if e in NODE_PARAMETERS
                             and name in NODE_PARAMETERS[e]]
                hint = did_you_mean(name, specs) or (
                    f"; {', '.join(elsewhere)} has it" if elsewhere else "")
                raise ParameterError(
                    f"{where}: {node} has no parameter {name!r}{hint} ({node}'s parameters: "
                    f"{', '.join(NODE_PARAMETERS[exe])})")
            out.setdefault(node, {})[name] = check_value(specs[name], value,
                                                         f"{where} {node}.{name}")
    return out


def parse_param(item: str, where: str = "--param") -> tuple[str, str, object]:
    """``NODE.NAME=VALUE`` -> (node, name, value); the value is read as JSON, else as YAML
    (as on a ``ros2 run ... -p`` line: ``true``, ``3``, ``0.5``), else it is the text."""
    import json

    import yaml

    key, eq, raw = item.partition("=")
    node, _, name = key.partition(".")
    if not eq or not node or not name or not raw:
        raise ParameterError(f"{where} wants NODE.NAME=VALUE (e.g. "
                             f"gesture_controller.max_linear=0.2), got {item!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    if value is None or isinstance(value, (list, dict)):
        value = raw
    return node, name, value


def parse_params(items: Iterable[str], where: str = "--param") -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items:
        node, name, value = parse_param(item, where)
        out.setdefault(node, {})[name] = value
    return out
