"""One way to open any event source: a recording, a bag, a live camera or the simulator.

A source spec is a string, as the CLI and the ROS nodes take it: ``SOURCE_SPECS`` lists them
and ``RECORDING_FORMATS`` the recordings a path may name (``snn4 sources`` prints both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .array import EventArray
from .codecs import DecodeStats
from .errors import EventDataError, did_you_mean
from .specs import SpecError, synthetic_fields
from .stream import Chunk, Pacer, time_chunks

BAG_SUFFIXES = (".db3", ".mcap", ".bag")

SOURCE_SPECS = (
    ("synthetic, synthetic:seed=S", "the synthetic gesture DVS (128x128), seeded (a "
                                    "dataset spec adds n=: synthetic:n=N,seed=S)"),
    ("camera, camera:SERIAL", "a live iniVation camera through dv-processing"),
    ("PATH", "a recording in one of the formats below"),
)
RECORDING_FORMATS = (       # (detect_format's name, what it reads)
    ("rosbag2", "ROS 2 bag: folder, .db3 or .mcap (also .db3.zstd / .mcap.zstd)"),
    ("rosbag1", "ROS 1 .bag"),
    ("aedat4", "iniVation AEDAT4 .aedat4"),
    ("aedat2", "jAER .aedat / .aedat2 / .dat"),
    ("prophesee_raw", "Prophesee .raw"),
    ("nmnist", "N-MNIST .bin / .bs2"),
    ("nmnist_stream", "an N-MNIST folder (labels.txt + samples): every sample's saccades back "
                      "to back, as one recording"),
)


def detect_format(path: str | Path) -> str:
    """The format name of a recording, from its suffix or folder layout."""
    p = Path(path)
    if p.is_dir():
        if (p / "metadata.yaml").exists() or any(
                any(p.glob(f"*{s}")) for s in (".db3", ".mcap", ".db3.zstd", ".mcap.zstd")):
            return "rosbag2"
        if (p / "labels.txt").exists() and (any(p.glob("*.bs2")) or any(p.glob("*.bin"))):
            return "nmnist_stream"
        raise EventDataError("folder is not a ROS 2 bag (no metadata.yaml, .db3 or .mcap) "
                             "and not an N-MNIST folder (labels.txt + .bs2/.bin)", where=str(p))
    if not p.exists():
        raise EventDataError("no such file", where=str(p))
    suf = p.suffix.lower()
    if suf in (".db3", ".mcap") or p.name.lower().endswith((".db3.zstd", ".mcap.zstd")):
        return "rosbag2"
    if suf == ".bag":
        return "rosbag1"
    if suf == ".aedat4":
        return "aedat4"
    if suf in (".aedat", ".aedat2", ".dat"):
        return "aedat2"
    if suf == ".raw":
        return "prophesee_raw"
    if suf in (".bin", ".bs2"):
        return "nmnist"
    head = p.read_bytes()[:32]
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    raise EventDataError(f"unknown recording format (suffix {suf!r})", where=str(p))


def read_recording(path: str | Path, topic: str | None = None, strict: bool = True
                   ) -> tuple[EventArray, DecodeStats, dict]:
    """All events of a recording of any supported format, with stats and format facts."""
    fmt = detect_format(path)
    info: dict = {"format": fmt}
    if fmt in ("rosbag2", "rosbag1"):
        from .bags import read_bag

        ea, stats, bag = read_bag(path, topic, strict)
        info.update(bag)
        return ea, stats, info
    if topic is not None:
        raise EventDataError("--topic applies to bags only", where=str(path))
    from . import files

    reader = {"aedat4": files.read_aedat4, "aedat2": files.read_aedat2,
              "prophesee_raw": files.read_prophesee_raw, "nmnist": files.read_nmnist,
              "nmnist_stream": files.read_nmnist_stream}[fmt]
    ea, stats = reader(path, strict=strict)
    return ea, stats, info


def inspect_recording(path: str | Path, topic: str | None = None, strict: bool = True) -> dict:
    """The summary `snn4 inspect --json` prints."""
    ea, stats, info = read_recording(path, topic, strict)
    out = {"path": str(path), "format": info["format"]}
    out.update(ea.summary())
    out["duration_s"] = ((ea.t_last_ns - ea.t_first_ns) / 1e9) if len(ea) else 0.0
    if "messages" in info:
        out.update(messages=info["messages"], topic=info["topic"], msgtype=info["msgtype"],
                   encoding=info["encoding"], notes=info.get("notes", []))
    out["stats"] = stats.as_dict()
    if len(ea):
        out["sum_x"] = int(ea.events["x"].sum(dtype=np.int64))
        out["sum_y"] = int(ea.events["y"].sum(dtype=np.int64))
    return out


SOURCE_KINDS = ("synthetic", "camera")


def check_source(spec: str) -> str:
    """``spec`` if it can work, else a one-line ``UserError``: checked before a node, a model
    or a graph starts (a wrong source once failed inside the running graph, 20 s later)."""
    kind, sep, arg = spec.partition(":")
    if kind == "synthetic":
        synthetic_fields(spec, source=True, what="source")
        return spec
    if kind == "camera":
        return spec
    if kind == "synthetic-real":
        raise SpecError(f"source {spec!r}: synthetic-real is a dataset (snn4 train/eval); "
                        "the event source is synthetic[:seed=S]")
    p = Path(spec).expanduser()
    if not p.exists() and sep and not kind.startswith((".", "/", "~")) \
            and did_you_mean(kind, SOURCE_KINDS):
        raise SpecError(f"source {spec!r}: unknown kind {kind!r}"
                        f"{did_you_mean(kind, SOURCE_KINDS)} (sources: synthetic[:seed=S], "
                        "camera[:SERIAL] or a recording PATH; snn4 sources lists them)")
    if not p.exists():
        raise SpecError(f"source {spec!r}: no such bag or recording (and not "
                        "synthetic[:seed=S] or camera[:SERIAL]; snn4 sources lists them)")
    detect_format(p)                 # a folder or file that is no recording: its own line
    return spec


def iter_source(spec: str, chunk_us: int = 1000, realtime: bool = False,
                duration_s: float | None = None, topic: str | None = None,
                strict: bool = True, seed: int | None = None,
                pacer: Pacer | None = None) -> Iterator[Chunk]:
    """Chunks of about ``chunk_us`` of events from any source; paced to the wall clock if
    ``realtime`` (the simulator is paced, recordings are replayed at their own speed).
    Pass a ``pacer`` to read how far behind real time the stream runs. Paced synthetic
    streams are rendered ahead in their own process (``render_ahead``)."""
    pacer = pacer if pacer is not None else Pacer(1.0 if realtime else None)
    kind = spec.partition(":")[0]
    if realtime and kind == "synthetic":
        from .render_ahead import RenderAhead
        fields = synthetic_fields(spec, source=True, what="source")
        raw = RenderAhead(seed=fields.get("seed", seed or 0),
                          dt_us=min(chunk_us, 2000)).chunks()
    else:
        raw = _raw_chunks(spec, chunk_us, topic, strict, seed)
    for chunk in raw:
        if len(chunk.events) or chunk.label:
            t_end = int(chunk.events["t"][-1]) if len(chunk.events) else \
                int(chunk.label.get("t_ns", 0)) if chunk.label else 0
            elapsed = pacer.pace(t_end)
            if duration_s is not None and elapsed > duration_s:
                return
        yield chunk


def _raw_chunks(spec: str, chunk_us: int, topic, strict, seed) -> Iterator[Chunk]:
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from .synthetic import GestureSimulator, SceneConfig

        fields = synthetic_fields(spec, source=True, what="source")
        sim = GestureSimulator(seed=fields.get("seed", seed or 0),
                               scene=SceneConfig(dt_us=min(chunk_us, 2000)))
        for ev, label in sim.stream():
            yield Chunk(ev, sim.sensor.width, sim.sensor.height, label)
        return
    if kind == "camera":
        from .camera import iter_camera

        yield from iter_camera(arg or None)
        return
    ea, _, _ = read_recording(spec, topic, strict)
    for ev in time_chunks(ea.events, chunk_us):
        yield Chunk(ev, ea.width, ea.height)
