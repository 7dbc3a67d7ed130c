"""``snn4_inference`` node: EventPackets -> streaming HybridNet -> gestures and tracks.

Subscribes best-effort (matches reliable and best-effort drivers), decodes any encoding with
the core decoder (lenient: bad packets are counted and reported, the node keeps running),
windows events into the model's time bins and steps the streaming runner once per closed
bin. Publishes ``vision_msgs/Classification`` (all class scores) on ``gesture`` and
``vision_msgs/Detection2DArray`` (the tracked target, in the camera's pixels, with a box
sized from the events around it) on ``tracks``, with the header (stamp, camera frame) of the
last packet used. Topics are relative: the node's namespace groups one pipeline, and
``events`` is remapped to the camera driver's topic.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import torch
from rclpy.node import Node

from ..events import Packet
from ..events.frames import model_to_sensor, target_extent
from ..models import checkpoint
from ..models.zoo import REAL_MODEL, find_model
from ..runtime.backlog import DEFAULT_EVENT_CAP, Backlog, LatencyBudget, born_on_clock
from ..runtime.gc_pauses import GcPauses
from ..runtime.pipeline import Decision, GeometryError, PerceptionPipeline, PipelineLimits
from .common import declare, diagnostic, publish_diagnostics, record_msg
from .lifecycle import freeze_startup_heap
from .topics import (DEBUG_ATTENTION_TOPIC, DEBUG_FRAME_TOPIC, EVENTS_SUB_QOS, EVENTS_TOPIC,
                     GESTURE_TOPIC, PROGRESS_TOPIC, RECORD_QOS, RESULT_QOS, TRACKS_TOPIC)


class InferenceNode(Node):
    """ROS adapter of ``PerceptionPipeline``: the subscription only enqueues (a backlog
    bounded in time, ``runtime.backlog``), one worker thread runs the pipeline and
    publishes; diagnostics report its counters every second.
    ``backend:=lava`` hands the spiking backbone to the Lava bridge (``LavaClient``)."""

    def __init__(self, **kwargs):
        super().__init__("snn4_inference", **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from event_camera_msgs.msg import EventPacket
        from vision_msgs.msg import Classification, Detection2DArray

        self.model_name = declare(self, "model", REAL_MODEL,
                                  "shipped model name or checkpoint path")
        self.backend = declare(self, "backend", "torch", "torch (this process, cpu or cuda) "
                               "or lava (the spiking backbone in the Lava bridge node)")
        self.device = declare(self, "device", "cpu", "cpu or cuda")
        self.threads = declare(self, "threads", 1, "torch CPU threads", 1, 64)
        if self.backend not in ("torch", "lava"):
            raise ValueError(f"backend {self.backend!r}: choose torch or lava")
        torch.set_num_threads(self.threads)
        net, self.card = checkpoint.load(find_model(self.model_name))
        self.rescale = declare(self, "rescale", True, "map other sensor sizes onto the model's "
                               "(centred crop to its aspect ratio, then scaling)")
        remote = None
        if self.backend == "lava":
            from ..models.loihi import check_loihi
            from .lava_client import LavaClient

            check_loihi(net)              # a clear list of what does not map onto Loihi 2
            remote = self.lava = LavaClient(self, net.feature_shape(), declare(
                self, "lava_timeout_s", 2.0, "wait this long for the bridge's answer", 0.01,
                60.0))
        limits = PipelineLimits(
            max_packet_span_s=declare(self, "max_packet_span_s", 1.0, "reject a packet whose "
                                      "events span longer than this (seconds)", 0.001, 3600.0),
            max_bins_per_packet=declare(self, "max_bins_per_packet", 64, "most time bins "
                                        "stepped for one packet", 1, 100000),
            confirm_packets=declare(self, "confirm_packets", 3, "consecutive packets that "
                                    "confirm a new timeline or sensor size", 1, 1000))
        self.max_packet_bytes = declare(self, "max_packet_bytes", 4 << 20, "reject (count) "
                                        "packets with a larger payload", 1024, 1 << 31)
        self.max_queue_bytes = declare(self, "max_queue_bytes", 64 << 20, "payload bytes "
                                       "held before the oldest packet is dropped (a memory "
                                       "guard)", 1 << 16, 1 << 34)
        self.stall_s = declare(self, "worker_stall_s", 2.0, "a worker busy this long on one "
                               "packet is reported as stuck (ERROR)", 0.1, 600.0)
        self.decision_window = declare(self, "decision_window", 0, "latest time bins the "
                                       "bridge and heads read (0: the model's window; fewer "
                                       "answer sooner after a gesture starts)", 0, 1024)
        self.pipeline = PerceptionPipeline(net, self.device, rescale=self.rescale,
                                           backbone=remote, limits=limits,
                                           window=self.decision_window or None)
        self.net = self.pipeline.net
        self.pipeline.warm_up()
        events_topic = declare(self, "events_topic", EVENTS_TOPIC, "input EventPacket topic")
        self.ingest = declare(self, "ingest", "direct", "how packets reach the worker: "
                              "direct (the worker thread takes every queued packet from DDS "
                              "itself at each wake-up; the executor never sees them) or "
                              "executor (one subscription callback per packet)")
        if self.ingest not in ("direct", "executor"):
            raise ValueError(f"ingest {self.ingest!r}: choose direct or executor")
        self.sub = self._reader = None
        if self.ingest == "executor":
            self.sub = self.create_subscription(EventPacket, events_topic, self._on_packet,
                                                EVENTS_SUB_QOS)
        else:
            from .ingest import DirectReader
            self._reader = DirectReader(self, EventPacket, events_topic, EVENTS_SUB_QOS)
        self.pub_cls = self.create_publisher(Classification, GESTURE_TOPIC, RESULT_QOS)
        self.pub_det = self.create_publisher(Detection2DArray, TRACKS_TOPIC, RESULT_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # one record per packet (lossless) or batch handled, only while someone listens: what
        # a reader needs to account for every packet and every decision -- the packets
        # handled so far, the bins closed and their synaptic operations, the counters
        self.pub_progress = self.create_publisher(DiagnosticArray, PROGRESS_TOPIC, RECORD_QOS)
        from sensor_msgs.msg import Image
        # debug outputs: only computed while someone subscribes
        self.pub_frame = self.create_publisher(Image, DEBUG_FRAME_TOPIC, 2)
        self.pub_attn = self.create_publisher(Image, DEBUG_ATTENTION_TOPIC, 2)
        self.last: tuple | None = None          # (class, confidence, target position)
        self._warm_with: tuple | None = None     # the last decision (out, header, frame)
        self.lat_ms: list[float] = []
        self._lat_new: list[float] = []          # since the last diagnostics message
        self._spikes: np.ndarray | None = None   # spike counts per layer since then
        self._spike_bins = 0
        self.last_packet_wall: float | None = None
        self.first_packet_wall: float | None = None
        self.queue_size = declare(self, "queue_size", 10000, "packets held at most (a memory "
                                  "guard: latency is bounded by deadline_s, not by this)",
                                  1, 1000000)
        self.deadline_s = declare(self, "deadline_s", 0.04, "data older than the newest by "
                                  "more than this is shed (counted; the network's state is "
                                  "carried), and of a backlog only the newest bin is decided; "
                                  "0 processes everything in order (lossless replay)", 0.0, 60.0)
        self.max_events_per_bin = declare(self, "max_events_per_bin", DEFAULT_EVENT_CAP,
                                          "cap events per time bin by counted uniform "
                                          "subsampling (0: no cap)", 0, 1 << 30)
        # the callback only enqueues; one worker thread takes the backlog and runs the
        # pipeline. Latency is bounded by the deadline (late data shed, counted), memory by
        # queue_size and max_queue_bytes (the oldest dropped, counted as queue_full)
        self.backlog = Backlog(LatencyBudget(self.deadline_s or 1e9, self.max_events_per_bin,
                                             self.queue_size, self.max_queue_bytes),
                               size_of=lambda item: len(item[1].events))
        self._stop = False
        self.errors = 0
        self.processed = 0                      # packets taken off the backlog and handled
        self.decisions = 0                      # decisions published
        self.busy_since: float | None = None    # liveness: when the batch in hand was taken
        self.last_exception = ""
        self.oversized = 0
        self._shed_last = (0, 0)                # (events, shed events) at the last diagnostics
        self._bad_seen = (0, 0)                  # (bad inputs, errors) at the last report
        self._last_bad_wall = self._last_error_wall = -1e9
        self._held = False                      # tests: the worker takes nothing while set
        self._parked = threading.Event()        # ... and has seen it (not inside a take)
        self.pipeline.governor.floor = declare(
            self, "thin_floor_events", self.pipeline.governor.floor, "while batches fall "
            "behind, decode only part of the fresh packets (the rest skimmed, counted as "
            "thinned), never fewer events per bin than this; 0: never thin", 0, 1 << 30)
        self.prewarm = declare(self, "prewarm", True, "rehearse the model step (state "
                               "untouched) when idle just before a bin closes: on a slow or "
                               "shared CPU the real step then runs from warm caches, about "
                               "half the decision latency for one more step's CPU per bin "
                               "(bench/ingest.py); never while behind")
        self.pipeline.duty.max_fraction = declare(
            self, "prewarm_max_busy", self.pipeline.duty.max_fraction, "no prewarm while "
            "the worker was busy more than this share of the last ~0.5 s (a CPU so starved "
            "that the extra step delays the real ones); 1: always", 0.0, 1.0)
        self.gc_pauses = GcPauses()
        self.freeze_gc = declare(self, "freeze_gc", True, "move everything alive after "
                                 "start-up (torch, the model) out of the garbage collector's "
                                 "reach: a full collection of it stalled the worker for "
                                 "100+ ms (2-3 bins) on a slow CPU")
        if self.freeze_gc:
            freeze_startup_heap()
        self.create_timer(1.0, self._diagnostics)
        self.worker = threading.Thread(target=self._work, daemon=True, name="snn4_inference")
        self.worker.start()

    def destroy_node(self):
        """Stop the worker and wait for it: a thread still inside torch when the
        interpreter exits aborts the process (``terminate called without an active
        exception``). The per-packet bin cap bounds how long the wait can be."""
        self._stop = True
        self.backlog.close(clear=True)
        if threading.current_thread() is not self.worker:
            self.worker.join(timeout=10.0)
        if self.worker.is_alive():
            self.get_logger().error("inference worker did not stop within 10 s")
        elif self._reader is not None:
            self._reader.destroy()
        self.gc_pauses.close()
        return super().destroy_node()

    @contextlib.contextmanager
    def held(self):
        """Tests: while inside, the worker takes nothing off the backlog (packets still
        arrive into it), so a burst can meet a full queue or grow stale on purpose."""
        self._held = True
        self._parked.clear()
        with self.backlog._cv:                 # a worker waiting inside take() wakes empty,
            self.backlog._cv.notify_all()      # sees the flag and parks: none taken after
        if self.worker.is_alive() and not self._parked.wait(10.0):
            self._held = False
            raise RuntimeError("the inference worker did not park within 10 s")
        try:
            yield
        finally:
            self._held = False

    # the backlog and its lock (tests hold the lock to make a burst meet a full queue)
    _queue = property(lambda self: self.backlog._q)
    _cv = property(lambda self: self.backlog._cv)

    # the pipeline's counters, under the names diagnostics and tests read
    decoder = property(lambda self: self.pipeline.decoder)
    bins = property(lambda self: self.pipeline.bins)
    geometry_errors = property(lambda self: self.pipeline.geometry_errors)
    time_jumps = property(lambda self: self.pipeline.time_jumps)
    stream_geometry = property(lambda self: self.pipeline.stream_geometry)

    def _on_packet(self, msg) -> None:
        """DDS callback: enqueue only, with when the data was made (its header stamp on this
        node's clock; the arrival time when the stamp is implausible). A payload above
        ``max_packet_bytes`` is rejected here, counted, never queued."""
        if len(msg.events) > self.max_packet_bytes:
            self.oversized += 1
            return
        self.last_packet_wall = time.monotonic()
        if self.first_packet_wall is None:
            self.first_packet_wall = self.last_packet_wall
        st = msg.header.stamp
        born = born_on_clock(st.sec + st.nanosec * 1e-9,
                             self.get_clock().now().nanoseconds * 1e-9, self.last_packet_wall)
        self.backlog.put((time.perf_counter(), msg), born)

    @property
    def dropped(self) -> int:
        """Packets whose events were not used: late (shed) or beyond the memory guard."""
        return self.pipeline.shed.late_packets + self.backlog.stats.queue_full_packets

    @property
    def shed(self):
        return self.pipeline.shed

    def _ingest(self) -> None:
        """``ingest: direct``: wait for packets (no wait while some are queued), then take
        every one DDS holds now into the backlog -- one wake-up per backlog, not per
        packet. At most ``queue_size`` per call, so a flood cannot keep the worker here."""
        r = self._reader
        t0 = None
        try:
            if not len(self.backlog) and not r.wait(0.1):
                return
            t0 = self.pipeline.clock()    # taking and deserialising is work (the busy share)
            for _ in range(self.queue_size):
                msg = r.take()
                if msg is None:
                    return
                self._on_packet(msg)
        except Exception as exc:
            if self._stop or not self.context.ok():   # shutting down: the context is gone
                self._stop = True
                return
            self.errors += 1              # counted and shown; the worker keeps going
            self.last_exception = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"taking packets failed: {self.last_exception}")
            time.sleep(0.1)
        finally:
            if t0 is not None:
                self.pipeline.duty.add(t0, self.pipeline.clock())

    def _work(self) -> None:
        while not self._stop:
            if self._reader is not None:
                self._ingest()
            if self._held:
                self._parked.set()
                time.sleep(0.005)
                continue
            late, fresh = self.backlog.take(timeout=0.1 if self._reader is None else 0.0)
            if self._stop:
                return
            if not late and not fresh:
                continue
            self.busy_since = time.monotonic()
            t0 = self.pipeline.clock()
            try:
                if not self.deadline_s:              # lossless: every packet, in order
                    for item in late + fresh:        # (nothing is late without a deadline)
                        emitted = self._guarded(self._process, item)
                        self.processed += 1
                        self._report(item[1].header, emitted)
                else:
                    emitted = self._guarded(self._process_batch, late, fresh)
                    self.processed += len(late) + len(fresh)
                    self._report((late + fresh)[-1][1].header, emitted)
                # the batch counts before prewarm's gate reads the busy share
                self.pipeline.duty.add(t0, self.pipeline.clock())
                t0 = self.pipeline.clock()
                if self.prewarm and not late and not self.pipeline.governor.budget:
                    try:
                        self._prewarm()
                    except Exception as exc:         # counted and shown; never fatal
                        self.errors += 1
                        self.last_exception = f"prewarm: {type(exc).__name__}: {exc}"
                        self.get_logger().error(f"prewarm failed: {self.last_exception}")
            finally:
                self.pipeline.duty.add(t0, self.pipeline.clock())
                self.busy_since = None

    def _idle(self) -> bool:
        """Nothing waiting: no packet in the backlog, none queued in DDS for the reader."""
        if len(self.backlog):
            return False
        return self._reader is None or not self._reader.wait(0.0)

    def _report(self, header, emitted: list) -> None:
        if self.pub_progress.get_subscription_count():
            self.pub_progress.publish(self._progress(header, [r for r, _ in emitted]))

    def _progress(self, header, results: list):
        """The record of the packets just handled, published after their decisions: a reader
        that has it knows how many packets are done with and how many decisions to expect."""
        from ..eval.inprocess import bin_synops

        st = self.decoder.stats
        return record_msg("snn4_inference: packets handled", header.stamp, {
            # every packet that reached the node and is done with: handled (used or shed
            # late), dropped by the memory guard, or refused as too large
            "handled": self.processed + self.backlog.stats.queue_full_packets
            + self.oversized,
            # decisions published so far (a coalesced bin of a backlog steps the network
            # without one): the reader's index of each decision's synaptic operations
            "decisions": self.decisions, "first_decision": self.decisions - len(results),
            "bins": self.bins,
            "synops": ";".join(repr(bin_synops(self.net, r.frame, r.output.spikes))
                               for r in results),
            "geometry_errors": self.geometry_errors, "time_jumps": self.time_jumps,
            "dropped": self.dropped,
            **{k: v for k, v in st.as_dict().items() if isinstance(v, int)}})

    def _guarded(self, fn, *args) -> list:
        """``fn``'s emitted (result, header) pairs; an error is counted, never raised."""
        try:
            return fn(*args)
        except GeometryError as exc:
            if self.geometry_errors == 1 or self.geometry_errors % 1000 == 0:
                self.get_logger().error(f"{exc}; dropped ({self.geometry_errors} so far)")
        except Exception as exc:     # keep running; the error shows in diagnostics
            self.errors += 1
            self.last_exception = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"packet processing failed: {self.last_exception}")
        return []

    def _process(self, item) -> list:
        t0, msg = item
        results = self.pipeline.process(Packet.from_msg(msg))
        return self._emit([(r, msg.header) for r in results], t0)

    def _process_batch(self, late: list, fresh: list) -> list:
        pk_late = [Packet.from_msg(m) for _, m in late]
        pk_fresh = [Packet.from_msg(m) for _, m in fresh]
        n_geom = self.geometry_errors
        got = self.pipeline.process_batch(pk_late, pk_fresh, self.max_events_per_bin)
        if self.geometry_errors != n_geom and (n_geom == 0 or self.geometry_errors // 1000
                                                != n_geom // 1000):
            self.get_logger().error(f"{self.pipeline.last_geometry_error}; dropped "
                                    f"({self.geometry_errors} so far)")
        return self._emit([(r, fresh[i][1].header) for i, r in got],
                          fresh[got[-1][0]][0] if got else 0)

    def _emit(self, results: list, t0: float) -> list:
        for r, header in results:
            self._publish(r.output, header, r.frame)
            self.decisions += 1
            self._debug_images(r.frame, r.output, header)
            counts = np.array([float(c[0]) for c in r.output.spikes])
            self._spikes = counts if self._spikes is None else self._spikes + counts
            self._spike_bins += 1
        if results:
            ms = (time.perf_counter() - t0) * 1e3
            self.lat_ms.append(ms)
            self._lat_new.append(ms)
        return results

    def _debug_images(self, frame: np.ndarray, out, header) -> None:
        if self.pub_frame.get_subscription_count():
            img = np.clip(128 + 32 * (frame[1] - frame[0]), 0, 255).astype(np.uint8)
            self.pub_frame.publish(_mono8(img, header))
        if self.pub_attn.get_subscription_count():
            a = out.attention[0].float().cpu().numpy()
            self.pub_attn.publish(_mono8((255 * np.clip(a, 0, 1)).astype(np.uint8), header))

    def _publish(self, out, header, frame=None) -> None:
        d = Decision.of(out)
        classes = self.net.cfg.classes
        self.last = (classes[d.top], d.confidence, d.position)
        self._warm_with = (out, header, frame)
        cls, arr = self._messages(d, header, frame)
        self.pub_cls.publish(cls)
        if arr is not None:
            self.pub_det.publish(arr)

    def _prewarm(self) -> None:
        """The pipeline's rehearsal, then the last decision's messages built again and thrown
        away: on a cold CPU building them took ~1.3 ms of the decision's path, ~0.15 warm."""
        # idle is asked only once a rehearsal is due (about once a bin), not per packet:
        # the DDS check rebuilds a wait set
        if self.pipeline.prewarm(self._idle) and self._warm_with is not None:
            out, header, frame = self._warm_with
            self._messages(Decision.of(out), header, frame)

    def _messages(self, d: Decision, header, frame=None) -> tuple:
        """The Classification and (with a target) the Detection2DArray of one decision."""
        from vision_msgs.msg import (Classification, Detection2D, Detection2DArray,
                                     ObjectHypothesis, ObjectHypothesisWithPose)

        classes = self.net.cfg.classes
        cls = Classification()
        cls.header = header
        cls.results = [ObjectHypothesis(class_id=classes[i], score=float(d.probs[i]))
                       for i in np.argsort(-d.probs)]
        if d.position is None:
            return cls, None
        arr = Detection2DArray()
        arr.header = header
        mx, my = d.position                     # model grid -> the camera's pixels
        sensor = self.pipeline.stream_geometry or self.pipeline.model_geometry
        x, y, scale = model_to_sensor(mx, my, sensor, self.pipeline.model_geometry)
        bw, bh = target_extent(frame, mx, my) if frame is not None else (2.0, 2.0)
        det = Detection2D()
        det.header = header
        det.id = "target"
        det.bbox.center.position.x, det.bbox.center.position.y = x, y
        det.bbox.size_x, det.bbox.size_y = bw * scale, bh * scale
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id = "target"
        h.hypothesis.score = d.visibility
        h.pose.pose.position.x, h.pose.pose.position.y = x, y
        det.results = [h]
        arr.detections = [det]
        return cls, arr

    def rejections(self) -> dict[str, int]:
        """Every input rejected, by cause: the decoder's, the pipeline's and this node's.
        Published in /diagnostics as ``rejected.<cause>`` (the dashboard's /metrics exposes
        them as ``snn4_rejected_total{node,cause}``) and their sum as ``rejections_total``."""
        st = self.decoder.stats
        out = {f"decode_{k}": v for k, v in st.skipped_by_cause.items()}
        out.update(self.pipeline.rejected)
        out.update(oversized=self.oversized, queue_full=self.backlog.stats.queue_full_packets,
                   processing_error=self.errors, out_of_range_events=st.out_of_range,
                   truncated_bytes=st.truncated_bytes, bad_words=st.bad_words,
                   late_events=self.pipeline.late_events)
        return {k: int(v) for k, v in out.items()}

    def worker_state(self) -> tuple[bool, float]:
        """(worker thread alive, seconds it has been busy on the current packet)."""
        busy = self.busy_since
        return self.worker.is_alive(), (0.0 if busy is None else time.monotonic() - busy)

    def _diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus as S

        st = self.decoder.stats
        # the worker decodes while this runs: read packets before events (the decoder counts
        # a packet after its events), so events never lag the packets they are reported with
        packets = st.packets
        now = time.monotonic()
        rej = self.rejections()
        bad = sum(v for k, v in rej.items() if k != "processing_error") \
            + st.time_regressions + st.seq_resets
        # a level reflects what happens now: the last 10 s, not the node's whole life
        if bad > self._bad_seen[0]:
            self._last_bad_wall = now
        if self.errors > self._bad_seen[1]:
            self._last_error_wall = now
        self._bad_seen = (bad, self.errors)
        alive, busy_s = self.worker_state()
        gc_n, gc_worst, gc_full = self.gc_pauses.take()      # since the last message
        shed = self.pipeline.shed
        ev_now, shed_now = shed.events, shed.shed_events()
        d_ev, d_shed = ev_now - self._shed_last[0], shed_now - self._shed_last[1]
        self._shed_last = (ev_now, shed_now)
        recent_shed = d_shed / d_ev if d_ev else 0.0
        stale = self.last_packet_wall is None or now - self.last_packet_wall > 1.0
        if not alive:
            level, msg = S.ERROR, "inference worker thread died"
        elif busy_s > self.stall_s:
            level, msg = S.ERROR, f"inference worker stuck on one packet for {busy_s:.1f} s"
        elif stale:
            level, msg = S.STALE, "no event packets"
        elif now - self._last_error_wall < 10.0:
            level, msg = S.ERROR, f"processing errors: {self.last_exception}"
        elif d_shed:
            level, msg = S.WARN, f"behind real time: shedding {100 * recent_shed:.1f}% of events"
        elif now - self._last_bad_wall < 10.0:
            level, msg = S.WARN, "bad input rejected (counted by cause)"
        else:
            level, msg = S.OK, "running"
        lat = np.percentile(self.lat_ms, [50, 99]) if self.lat_ms else (float("nan"),) * 2
        self.lat_ms = self.lat_ms[-1000:]
        recent, self._lat_new = self._lat_new, []
        sizes = self.pipeline.runner.layer_sizes
        rates = {}
        if self._spikes is not None and self._spike_bins and len(sizes) == len(self._spikes):
            rates = {f"spike_rate.L{i}": f"{c / (self._spike_bins * n):.5f}"
                     for i, (c, n) in enumerate(zip(self._spikes, sizes))}
        self._spikes, self._spike_bins = None, 0
        publish_diagnostics(self, self.diag_pub, [diagnostic(
            self, "inference", level[0], msg,
            {"model": self.card["preset"], "model_name": self.model_name,
             "backend": f"{self.backend}:{self.device}" if self.backend == "torch"
             else "lava:bridge",
             "model_geometry": "{}x{}".format(*self.pipeline.model_geometry),
             "stream_geometry": "{}x{}".format(*self.stream_geometry)
             if self.stream_geometry else "none",
             "bins": self.bins, "events": st.events, "packets": packets,
             "seq_gaps": st.seq_gaps, "seq_resets": st.seq_resets,
             "skipped_packets": st.skipped_packets,
             "geometry_errors": self.geometry_errors, "time_jumps": self.time_jumps,
             "geometry_changes": self.pipeline.geometry_changes,
             "dropped_packets": self.dropped, "queue": len(self.backlog),
             "queue_bytes": self.backlog.bytes, "processing_errors": self.errors,
             "deadline_ms": f"{self.deadline_s * 1e3:.1f}",
             "shed_fraction": f"{shed.shed_fraction():.6f}",
             "shed_fraction_recent": f"{recent_shed:.6f}",
             "late_packets": shed.late_packets, "late_events": shed.late_events,
             "capped_events": shed.capped_events,
             "thinned_events": shed.thinned_events,
             "thinned_packets": shed.thinned_packets,
             "thinning_budget": self.pipeline.governor.budget,
             "regressed_events": shed.regressed_events,
             "queue_full_packets": self.backlog.stats.queue_full_packets,
             "skipped_bins": shed.skipped_bins, "coalesced_bins": shed.coalesced_bins,
             "decided_bins": shed.decided_bins,
             "worker_alive": alive, "worker_busy_s": f"{busy_s:.2f}",
             "ingest": self.ingest, "gc_collections": gc_n,
             "prewarms": self.pipeline.prewarms,
             "prewarms_skipped_busy": self.pipeline.prewarms_skipped_busy,
             "worker_busy_share": f"{self.pipeline.duty.fraction(self.pipeline.clock()):.2f}",
             "prewarm_cpu_ms": f"{self.pipeline.prewarm_s * 1e3:.1f}",
             "gc_full_collections": gc_full, "gc_pause_max_ms": f"{gc_worst * 1e3:.1f}",
             "time_regressions": st.time_regressions, "last_error": st.last_error,
             **{f"rejected.{k}": v for k, v in sorted(rej.items())},
             "rejections_total": sum(v for k, v in rej.items()
                                   if k not in ("out_of_range_events", "truncated_bytes",
                                                "bad_words", "late_events")),
             "latency_p50_ms": f"{lat[0]:.2f}", "latency_p99_ms": f"{lat[1]:.2f}",
             # every packet -> decision latency since the last message (histograms downstream)
             "latency_ms_recent": ";".join(f"{v:.3f}" for v in recent[-200:]),
             **rates})])


def main(args=None) -> None:
    from .lifecycle import spin_node

    spin_node(InferenceNode, args)


def _mono8(img: np.ndarray, header):
    """A sensor_msgs/Image (mono8) of a 2-D uint8 array (fast byte copy)."""
    import array

    from sensor_msgs.msg import Image

    m = Image()
    m.header = header
    m.height, m.width = int(img.shape[0]), int(img.shape[1])
    m.encoding = "mono8"
    m.step = m.width
    m.data = array.array("B", np.ascontiguousarray(img).tobytes())
    return m
