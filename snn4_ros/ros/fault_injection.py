"""Fault injection and hostile input for the running graph, over real DDS.

Used by the reliability tests and by ``bench/reliability.py`` (which prints the README's
reliability table): malformed EventPackets by kind, node processes to kill, stall and
restart, and a ``cmd_vel`` watcher that measures the time from a fault to the first zero.
Nothing here is a mock: the packets go over DDS to the real nodes, the processes are the
real console scripts.
"""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..events import PacketEncoder, make_events

# what a hostile neighbour on the events topic sends (issue 17's attack list)
HOSTILE_KINDS = ("random_encoding", "random_bytes_evt3", "random_bytes_libcaer",
                 "lying_geometry", "zero_geometry", "lying_seq", "lying_time_base",
                 "long_span", "truncated", "oversized", "empty")


def _msg(encoding="evt3", width=128, height=128, payload=b"", seq=0, time_base=0,
         stamp_ns: int | None = None):
    from event_camera_msgs.msg import EventPacket

    m = EventPacket()
    now = time.time_ns() if stamp_ns is None else stamp_ns
    m.header.stamp.sec, m.header.stamp.nanosec = now // 10**9, now % 10**9
    m.encoding, m.width, m.height = encoding, int(width), int(height)
    m.seq, m.time_base = int(seq), int(time_base)
    m.events = array.array("B", bytes(payload))
    return m


def hostile_packet(kind: str, rng: np.random.Generator, oversized_bytes: int = 24 << 20):
    """One malformed ``event_camera_msgs/EventPacket`` of the given kind."""
    junk = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    ev = make_events(np.arange(0, 2_000_000, 20_000), rng.integers(0, 128, 100),
                     rng.integers(0, 128, 100), rng.integers(0, 2, 100))
    mono = PacketEncoder("mono", 128, 128).encode(ev)
    if kind == "random_encoding":
        enc = rng.choice(["evt4", "", "EVT3", "libcaer_cmp2", "\u2603", "x" * 200])
        return _msg(str(enc), payload=junk)
    if kind == "random_bytes_evt3":
        return _msg("evt3", payload=junk, seq=int(rng.integers(0, 2**63)))
    if kind == "random_bytes_libcaer":
        return _msg("libcaer", payload=junk, time_base=int(rng.integers(0, 2**63)))
    if kind == "lying_geometry":
        w, h = [(65536, 1), (1, 1), (346, 260), (4096, 4096)][int(rng.integers(0, 4))]
        return _msg("mono", w, h, mono.payload().tobytes(), time_base=mono.time_base)
    if kind == "zero_geometry":
        return _msg("evt3", 0, 0, b"")
    if kind == "lying_seq":
        return _msg("mono", payload=mono.payload().tobytes(), seq=2**64 - 1,
                    time_base=mono.time_base)
    if kind == "lying_time_base":
        return _msg("mono", payload=mono.payload().tobytes(),
                    time_base=int(rng.integers(2**40, 2**62)))
    if kind == "long_span":          # a valid evt3 packet with events at t and t + 1 h
        far = PacketEncoder("evt3", 128, 128).encode(
            make_events([0, 3600 * 10**9], [1, 2], [1, 2], [0, 1]))
        return _msg("evt3", payload=far.payload().tobytes())
    if kind == "truncated":
        return _msg("mono", payload=mono.payload().tobytes()[:-3], time_base=mono.time_base)
    if kind == "oversized":
        return _msg("evt3", payload=bytes(oversized_bytes))
    if kind == "empty":
        from event_camera_msgs.msg import EventPacket
        return EventPacket()
    raise ValueError(f"unknown hostile kind {kind!r}")


def record_result(name: str, **values) -> None:
    """Add one measured result to the JSON file named by ``SNN4_RELIABILITY_OUT`` (what
    ``bench/reliability.py`` tabulates); without it, nothing is written."""
    import json

    out = os.environ.get("SNN4_RELIABILITY_OUT")
    if not out:
        return
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    old = json.loads(Path(out).read_text()) if os.path.exists(out) else {}
    old[name] = values
    Path(out).write_text(json.dumps(old, indent=1))


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), MB."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def published_at(info) -> tuple[float, float]:
    """(publication time, now) on this process's monotonic clock, from a message's DDS
    source timestamp (the writer's system clock at ``publish``; the arrival time where the
    middleware gives none)."""
    now = time.monotonic()
    src = info.get("source_timestamp", 0) if isinstance(info, dict) else 0
    return (now - max(time.time_ns() - src, 0) / 1e9 if src else now), now


@dataclass
class DecisionWatch:
    """When each decision (``vision_msgs/Classification`` on ``gesture``) was published
    (monotonic seconds, as ``CmdWatch``): the controller's deadman counts from the last
    perception it got, and a fault's time-to-zero includes the decisions still on their way
    from before the fault."""

    times: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, node, topic: str | None = None) -> "DecisionWatch":
        from vision_msgs.msg import Classification

        from .common import GESTURE_TOPIC

        node.create_subscription(Classification, topic or GESTURE_TOPIC, self._on, 100)
        return self

    def _on(self, m, info) -> None:
        t, _ = published_at(info)
        with self.lock:
            self.times.append(t)

    def last_before(self, t: float) -> float | None:
        """Publication time of the last decision published before ``t`` (None: none)."""
        with self.lock:
            before = [x for x in self.times if x < t]
        return max(before) if before else None


@dataclass
class CmdWatch:
    """Every ``cmd_vel`` Twist with the time it was published (monotonic seconds).

    The time is the sample's DDS source timestamp (the writer's clock at ``publish``),
    mapped onto this process's monotonic clock: on a loaded machine the watcher's own
    executor may take a while to run the callback, and that delay is the watcher's, not the
    controller's. Where the middleware gives no source timestamp, the arrival time."""

    cmds: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    late_s: list = field(default_factory=list)      # arrival - publication, per command

    def attach(self, node, topic: str = "cmd_vel") -> "CmdWatch":
        from geometry_msgs.msg import Twist

        node.create_subscription(Twist, topic, self._on, 100)
        return self

    def _on(self, m, info) -> None:
        t, now = published_at(info)
        with self.lock:
            self.cmds.append((t, m.linear.x, m.angular.z))
            self.late_s.append(now - t)

    def last(self):
        with self.lock:
            return self.cmds[-1] if self.cmds else None

    def moving(self) -> bool:
        c = self.last()
        return c is not None and (c[1] != 0.0 or c[2] != 0.0)

    def time_to_zero(self, t_fault: float) -> float | None:
        """Seconds from the fault to the first zero command published after it (None: none
        yet)."""
        with self.lock:
            for t, lin, ang in self.cmds:
                if t >= t_fault and lin == 0.0 and ang == 0.0:
                    return t - t_fault
        return None

    def nonzero_after(self, t: float) -> int:
        with self.lock:
            return sum(1 for c in self.cmds if c[0] > t and (c[1] or c[2]))

    def last_nonzero_before(self, t: float) -> float | None:
        """Publication time of the last non-zero command published before ``t``."""
        with self.lock:
            ts = [c[0] for c in self.cmds if c[0] < t and (c[1] or c[2])]
        return max(ts) if ts else None


def node_process(executable: str, params: dict | None = None, env: dict | None = None,
                 remap: dict | None = None) -> subprocess.Popen:
    """A node as its own process: the installed console script, ``--ros-args -p`` (and
    ``-r`` for each of ``remap``). Its
    output goes to a log file (``proc.log_path``; ``log_tail(proc)`` reads the end): a pipe
    nobody reads fills after 64 KB of log lines and then blocks the node mid-write -- a
    stall no fault injected."""
    import tempfile

    from .lifecycle import die_with_parent

    # a test run killed half-way must not leave node processes publishing on the machine
    exe = Path(sys.executable).parent / executable
    args = [str(exe), "--ros-args"]
    for k, v in (params or {}).items():
        if isinstance(v, bool):
            v = str(v).lower()
        args += ["-p", f"{k}:={v}"]
    for k, v in (remap or {}).items():
        args += ["-r", f"{k}:={v}"]
    fd, log_path = tempfile.mkstemp(prefix=f"snn4-{executable}-", suffix=".log")
    try:
        proc = subprocess.Popen(args, stdout=fd, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
                                preexec_fn=die_with_parent)
    finally:
        os.close(fd)
    proc.log_path = log_path
    return proc


def log_tail(proc: subprocess.Popen, chars: int = 2000) -> str:
    """The last ``chars`` of a ``node_process``'s output (for a failure message)."""
    try:
        return Path(proc.log_path).read_text(errors="replace")[-chars:]
    except (AttributeError, OSError):
        return ""


def kill9(proc: subprocess.Popen, group: bool = False) -> float:
    """SIGKILL a node process (with ``group``, its whole process group: the Lava bridge's
    worker processes die with it, as on a crash of the machine's session); returns the
    monotonic time of the kill."""
    t = time.monotonic()
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return t
