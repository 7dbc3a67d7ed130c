"""``event_source`` node: any event source -> ``event_camera_msgs/EventPacket``.

Sources are the core's specs (a live iniVation camera, a recording, a bag, ``synthetic``).
Packets close on a time or size threshold, like libcaer_driver's
``event_message_time_threshold`` / ``event_message_size_threshold``; sequence numbers and
``time_base`` follow the chosen encoding. A reader thread paces the stream (or runs as fast as
possible) and publishes; rclpy publishers are thread-safe.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node

from ..events import PacketEncoder
from ..events.codecs import sensor_clock_offset
from ..events.sources import iter_source
from .common import EVENTS_PUB_QOS, EVENTS_TOPIC, declare, diagnostic, publish_diagnostics


class EventSourceNode(Node):
    """Publishes any event source as EventPackets from a reader thread (the module docstring
    has the packet thresholds); the source itself is the core's ``iter_source``."""

    def __init__(self, **kwargs):
        super().__init__("event_source", **kwargs)
        self.source = declare(self, "source", "synthetic", "source spec: synthetic[:seed=S], "
                              "camera[:SERIAL], or a bag/recording path")
        self.encoding = declare(self, "encoding", "evt3", "evt3 | libcaer_cmp | libcaer | mono")
        # seconds, like libcaer_driver's / metavision_driver's parameter of the same name
        self.time_s = declare(self, "event_message_time_threshold", 0.002,
                              "close a packet after this much sensor time (s)", 1e-4, 1.0)
        self.time_us = max(int(round(self.time_s * 1e6)), 1)
        self.size_bytes = declare(self, "event_message_size_threshold", 262144,
                                  "close a packet at this payload size (bytes)", 1024, 1 << 24)
        self.realtime = declare(self, "realtime", True, "pace to the wall clock")
        self.loop = declare(self, "loop", False, "play a recording again from its start when "
                            "it ends, its time continuing (ros2 bag play --loop)")
        self.frame_id = declare(self, "frame_id", "event_camera", "header frame id")
        self.wait_for_subscriber = declare(self, "wait_for_subscriber", True, "start a "
                                           "recording or the synthetic scene only once the "
                                           "events topic has a subscriber")
        self.topic = declare(self, "topic", EVENTS_TOPIC, "output topic (relative: remap "
                             "events, or launch with camera_name:=)")
        self.pub = self.create_publisher(self._msg_type(), self.topic, EVENTS_PUB_QOS)
        from diagnostic_msgs.msg import DiagnosticArray
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.packets = self.events = 0
        self.passes = 1                  # of a looped recording
        self._clock_offset: int | None = None  # ns taken off every event (codecs.sensor_clock_offset)
        self.error: str | None = None
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._t_rate = (time.monotonic(), 0, 0, 0.0)
        from ..events.stream import Pacer
        self.pacer = Pacer(1.0 if self.realtime else None)
        self._behind_warned = 0.0
        self.create_timer(1.0, self._diagnostics)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _msg_type():
        from event_camera_msgs.msg import EventPacket
        return EventPacket

    def _run(self) -> None:
        from .common import packet_to_msg

        enc = None
        buf, buf_bytes = [], 0
        t_open = None
        chunks = None
        offset = 0                      # ns added to a looped recording's time, per pass
        t_first = t_last = None         # the recording's first event, the last one sent
        try:
            self._wait_for_subscriber()
            while True:
                chunks = iter_source(self.source, chunk_us=min(self.time_us, 2000),
                                     realtime=self.realtime, pacer=self.pacer)
                for chunk in chunks:
                    if self._stop.is_set():
                        break
                    if enc is None:
                        enc = PacketEncoder(self.encoding, chunk.width, chunk.height,
                                            self.frame_id)
                    ev = chunk.events
                    if not len(ev):
                        continue
                    if t_first is None:
                        t_first = int(ev["t"][0])
                    if offset:
                        ev = ev.copy()
                        ev["t"] += offset
                    t_last = int(ev["t"][-1])
                    buf.append(ev)
                    buf_bytes += len(ev) * 8
                    t_open = int(ev["t"][0]) if t_open is None else t_open
                    if t_last - t_open >= self.time_us * 1000 or buf_bytes >= self.size_bytes:
                        self._publish(enc, buf, packet_to_msg)
                        buf, buf_bytes, t_open = [], 0, None
                chunks.close()
                if not self._loopable() or self._stop.is_set() or t_first is None:
                    break
                # the next pass starts one packet after this one's last event: the consumer
                # sees one continuous timeline, and the pacer keeps the wall-clock pace
                step = t_last + self.time_us * 1000 - t_first - offset
                offset += step
                self.pacer.t_data0 = None if self.pacer.t_data0 is None else \
                    self.pacer.t_data0 - step
                self.passes += 1
            if buf and not self._stop.is_set():     # the tail of a recording that ended
                self._publish(enc, buf, packet_to_msg)
        except Exception as exc:  # a broken source must be visible, not a silent stop
            self.error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"event source stopped: {self.error}")
        finally:
            if chunks is not None:
                chunks.close()               # the renderer's process and queue, now
            self.finished.set()

    def _loopable(self) -> bool:
        """Only a recording loops: the simulator and a camera never end."""
        kind = self.source.partition(":")[0]
        return self.loop and kind not in ("synthetic", "camera")

    def _publish(self, enc, buf: list, packet_to_msg) -> None:
        events = np.concatenate(buf)
        if self._clock_offset is None:          # fixed by the stream's first packet
            self._clock_offset = sensor_clock_offset(self.encoding, int(events["t"][0]))
        if self._clock_offset:
            events["t"] -= self._clock_offset
        now = self.get_clock().now().nanoseconds
        self.pub.publish(packet_to_msg(enc.encode(events, stamp_ns=now)))
        self.packets += 1
        self.events += len(events)

    def _wait_for_subscriber(self) -> None:
        """A recording (or the synthetic scene) starts when someone listens: published before
        the inference node is up (torch takes seconds to load), a short bag would be gone
        unseen. A live camera streams at once, like the drivers."""
        if not self.wait_for_subscriber or self.source.startswith("camera"):
            return
        t0 = time.monotonic()
        while not self._stop.is_set() and self.pub.get_subscription_count() == 0:
            if time.monotonic() - t0 > 5.0:
                self.get_logger().info(f"waiting for a subscriber on {self.pub.topic_name} "
                                       f"before playing {self.source}")
                t0 = time.monotonic()
            time.sleep(0.05)

    def _diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus as S

        t0, p0, e0, d0 = self._t_rate
        now = time.monotonic()
        dt = max(now - t0, 1e-6)
        rate_p, rate_e = (self.packets - p0) / dt, (self.events - e0) / dt
        data_s = self.pacer.elapsed_s
        self._t_rate = (now, self.packets, self.events, data_s)
        # a paced source that falls behind real time says so: the data seconds it made in
        # the last wall second (1.0 keeps up)
        rtf = (data_s - d0) / dt if self.realtime and d0 else None
        behind = self.realtime and not self.finished.is_set() and rtf is not None \
            and rtf < 0.99 and self.pacer.behind_s > 0.1
        if self.error:
            level, msg = S.ERROR, self.error
        elif self.finished.is_set():
            level, msg = S.WARN, "source ended"
        elif behind:
            level, msg = S.WARN, (f"behind real time: {rtf:.2f}x, "
                                  f"{self.pacer.behind_s:.1f} s behind the wall clock")
            if now - self._behind_warned > 10:
                self._behind_warned = now
                self.get_logger().warning(msg)
        else:
            level, msg = S.OK, "streaming"
        publish_diagnostics(self, self.diag_pub, [diagnostic(
            self, "source", level[0], msg,
            {"source": self.source, "encoding": self.encoding, "packets": self.packets,
             "events": self.events, "packet_rate_hz": f"{rate_p:.1f}",
             "event_rate_hz": f"{rate_e:.0f}",
             "real_time_factor": "" if rtf is None else f"{rtf:.3f}",
             "real_time_factor_total": f"{self.pacer.real_time_factor() or 0:.3f}",
             "behind_s": f"{self.pacer.behind_s:.3f}", "passes": self.passes})])

    def destroy_node(self):
        # let the source thread leave its loop: the stream's generators close on the way out
        # (the synthetic renderer's child process and queue; killed with the process instead,
        # they left 'leaked semaphore objects' warnings on the user's terminal)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=3.0)
        # a last status with the final counts: what reads them (``snn4 up --json``'s
        # ``published``) would otherwise keep the last once-a-second figure, lower than the
        # packets that arrived
        try:
            if self.context.ok():
                from rclpy.duration import Duration

                self._diagnostics()
                # /diagnostics is reliable: wait (bounded) until subscribers have it, or the
                # process may exit with the message still unsent
                self.diag_pub.wait_for_all_acked(Duration(seconds=1.0))
        except Exception:                       # the context went down under us: no status
            pass
        return super().destroy_node()


def main(args=None) -> None:
    from .lifecycle import spin_node

    spin_node(EventSourceNode, args)


if __name__ == "__main__":
    main()
