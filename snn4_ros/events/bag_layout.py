"""The layouts real ROS 2 bags come in, resolved to something ``rosbags`` opens.

rosbag2 itself tolerates more than ``rosbags`` does, and users have all of these:

* ``storage_identifier: ""`` in ``metadata.yaml`` (some rosbag2 versions write it; rosbag2
  infers the plugin from the file extension) -> inferred here from the files' suffixes;
* split bags (several files in ``relative_file_paths``) and zstd compression per file
  (``*.mcap.zstd``) or per message -> passed through (rosbags reads them);
* a folder whose ``metadata.yaml`` is missing (a recording that crashed, or is still
  running: rosbag2 writes the file when it closes the bag) -> the storage files are read
  directly, which is what ``ros2 bag reindex`` would index;
* an MCAP file without its footer and summary (still being recorded, or cut off) -> the
  complete records are copied into a temporary, indexed MCAP; the incomplete tail is named.

Nothing is ever written into the user's folder: fixes go to a temporary directory that
lives as long as the reader. Every fix is reported in ``notes`` so that ``snn4 inspect``
can say what it did.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorruptDataError, EventDataError

MCAP_MAGIC = b"\x89MCAP0\r\n"
_STORAGE_BY_SUFFIX = {".mcap": "mcap", ".db3": "sqlite3"}


@dataclass
class ResolvedBag:
    """What to hand to ``rosbags.highlevel.AnyReader``: paths, and what was done to get them."""

    paths: list[Path]
    notes: list[str] = field(default_factory=list)
    tmp: tempfile.TemporaryDirectory | None = None
    expected: dict[str, int] = field(default_factory=dict)   # topic -> messages metadata lists
    incomplete: str | None = None     # a file ends inside a record: what was lost, if known

    def cleanup(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def tmpdir(self) -> Path:
        if self.tmp is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="snn4-bag-")
        return Path(self.tmp.name)


def _natural_key(p: Path):
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]


def _storage_of(name: str) -> str | None:
    """Storage plugin of a file name (``x.mcap``, ``x_0.db3``, ``x.mcap.zstd``)."""
    n = name[:-5] if name.endswith(".zstd") else name
    return _STORAGE_BY_SUFFIX.get(Path(n).suffix.lower())


def mcap_is_complete(path: Path) -> bool:
    """An MCAP file that ends with its footer magic (closed by its writer)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head != MCAP_MAGIC:
            raise CorruptDataError("not an MCAP file (bad magic)", where=str(path))
        size = f.seek(0, 2)
        if size < 8 + 37:
            return False
        f.seek(-8, 2)
        return f.read(8) == MCAP_MAGIC


def _decompress_chunk(chunk):
    """A chunk record with its payload decompressed (zstd via the zstd rosbags uses, lz4)."""
    from dataclasses import replace

    if chunk.compression == "zstd":
        try:
            from compression import zstd       # Python 3.14
        except ImportError:
            from backports import zstd
        data = zstd.decompress(chunk.data)
    elif chunk.compression == "lz4":
        import lz4.frame
        data = lz4.frame.decompress(chunk.data)
    else:
        return chunk
    return replace(chunk, compression="", data=data)


def _complete_records_end(path: Path) -> int:
    """Byte offset just after the last complete top-level MCAP record (opcode, length, body)."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 8
        while True:
            f.seek(pos)
            head = f.read(9)
            if len(head) < 9:
                return pos
            (length,) = struct.unpack("<Q", head[1:])
            if pos + 9 + length > size:
                return pos
            pos += 9 + length


def recover_mcap(src: Path, dst: Path, index_topics: list[tuple[str, str]] | None = None
                 ) -> tuple[int, str]:
    """Copy every complete record of an MCAP file that lacks its footer into ``dst``.

    Returns (messages recovered, what was wrong with the tail). This is what a reader can do
    with a bag that is still being recorded: the chunk the recorder is filling is not on
    disk yet (or only partly), and is named as lost.

    Some writers (rosbags) put the schema and channel records only in the summary at the
    end, so a cut-off file has messages of channels it never defined. When the bag's
    metadata.yaml (``index_topics``: (topic, type)) names exactly one topic and the file
    has exactly one such channel, its messages are that topic's; otherwise they are
    counted as unattributable.
    """
    from mcap.records import Channel, Chunk, Footer, Message, Schema
    from mcap.stream_reader import StreamReader, breakup_chunk
    from mcap.writer import CompressionType, Writer

    schemas: dict[int, int] = {}
    channels: dict[int, int] = {}
    orphans: dict[int, int] = {}
    n = 0
    tail = ""
    end = _complete_records_end(src)
    size = src.stat().st_size
    if end < size:
        tail = (f"the file ends inside a record ({size - end} bytes after its last complete "
                "record); what that record held is lost")
    with open(src, "rb") as whole, open(dst, "wb") as out:
        import io
        f = io.BytesIO(whole.read(end))   # the complete records only
        w = Writer(out, compression=CompressionType.NONE)
        w.start(profile="ros2", library="snn4_ros recover_mcap")

        def take(rec) -> None:
            nonlocal n
            if isinstance(rec, Schema):
                schemas[rec.id] = w.register_schema(rec.name, rec.encoding, rec.data)
            elif isinstance(rec, Channel):
                channels[rec.id] = w.register_channel(rec.topic, rec.message_encoding,
                                                      schemas.get(rec.schema_id, 0),
                                                      dict(rec.metadata))
            elif isinstance(rec, Message):
                if rec.channel_id not in channels:
                    orphans[rec.channel_id] = orphans.get(rec.channel_id, 0) + 1
                    if len(orphans) == 1 and index_topics and len(index_topics) == 1:
                        topic, msgtype = index_topics[0]
                        sid = w.register_schema(msgtype, "ros2msg", b"")
                        channels[rec.channel_id] = w.register_channel(topic, "cdr", sid, {})
                    else:
                        return
                w.add_message(channels[rec.channel_id], rec.log_time, rec.data,
                              rec.publish_time, rec.sequence)
                n += 1

        try:
            for rec in StreamReader(f, emit_chunks=True).records:
                if isinstance(rec, Chunk):
                    for inner in breakup_chunk(_decompress_chunk(rec)):
                        take(inner)
                elif isinstance(rec, Footer):
                    break
                else:
                    take(rec)
        except Exception as exc:
            from mcap.exceptions import EndOfFile
            if not isinstance(exc, EndOfFile) or f.tell() < end:   # corrupt, not just cut
                tail = (f"record unreadable ({type(exc).__name__}: {exc}); what follows is "
                        "lost" + (f"; {tail}" if tail else ""))
        w.finish()
    lost = sum(orphans.values()) - (n if orphans and len(orphans) == 1 and index_topics
                                    and len(index_topics) == 1 else 0)
    if lost > 0:
        tail = (f"{lost} complete messages belong to channels the file never defined (its "
                "writer keeps the definitions for the summary at the end); " + tail)
    return n, tail


def _readable_file(path: Path, res: ResolvedBag,
                   index_topics: list[tuple[str, str]] | None = None) -> Path:
    """A storage file as rosbags can open it: zstd files decompressed, open MCAPs recovered."""
    if path.name.endswith(".zstd"):
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        plain = res.tmpdir() / path.name[:-5]
        try:
            with zstd.open(path, "rb") as fin, open(plain, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        except Exception as exc:
            raise CorruptDataError(f"cannot decompress {path.name}: {type(exc).__name__}: "
                                   f"{exc}", where=str(path)) from None
        res.notes.append(f"{path.name}: zstd-compressed file, decompressed to a temporary copy")
        path = plain
    if path.suffix.lower() == ".mcap" and not mcap_is_complete(path):
        fixed = res.tmpdir() / f"recovered_{path.name}"
        n, tail = recover_mcap(path, fixed, index_topics)
        res.notes.append(f"{path.name}: no MCAP footer (still being recorded, or cut off): "
                         f"{n} messages recovered" + (f"; {tail}" if tail else ""))
        if tail:
            res.incomplete = f"{path.name}: {tail}"
        path = fixed
    return path


def _storage_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and _storage_of(p.name)]
    return sorted(files, key=_natural_key)


def resolve_rosbag2(path: str | Path) -> ResolvedBag:
    """Resolve a ROS 2 bag (folder or storage file) into paths rosbags opens.

    Raises EventDataError with the reason (and what to do) for layouts that cannot be read.
    """
    import yaml

    path = Path(path)
    res = ResolvedBag([])
    try:
        if path.is_file():
            if not _storage_of(path.name):
                raise EventDataError("not a ROS 2 bag storage file (.mcap, .db3, or either "
                                     "with .zstd)", where=str(path))
            res.paths = [_readable_file(path, res)]
            return res
        if not path.is_dir():
            raise EventDataError("no such bag", where=str(path))
        meta_path = path / "metadata.yaml"
        if not meta_path.exists():
            files = _storage_files(path)
            if not files:
                raise EventDataError("folder is not a ROS 2 bag: no metadata.yaml and no "
                                     ".mcap/.db3 files", where=str(path))
            res.notes.append(f"no metadata.yaml: read the {len(files)} storage file(s) "
                             "directly (`ros2 bag reindex` would write the index)")
            res.paths = [_readable_file(f, res) for f in files]
            return res
        try:
            meta = yaml.safe_load(meta_path.read_text())
            info = meta["rosbag2_bagfile_information"]
            rel = [Path(p).name for p in info["relative_file_paths"]]
        except Exception as exc:
            why = " ".join(str(exc).split())[:200]
            raise CorruptDataError(f"metadata.yaml is unreadable ({type(exc).__name__}: {why});"
                                   " move it away to read the storage files directly",
                                   where=str(path)) from None
        missing = [r for r in rel if not (path / r).exists()]
        if missing:
            raise CorruptDataError(f"metadata.yaml lists files that are not there: {missing}; "
                                   "move metadata.yaml away to read the files that are",
                                   where=str(path))
        fixes = False
        storage = info.get("storage_identifier") or ""
        kinds = {_storage_of(r) for r in rel}
        if not storage:
            if len(kinds) != 1 or None in kinds:
                raise CorruptDataError(f"storage_identifier is empty and the files {rel} do "
                                       "not name one storage (.mcap or .db3)", where=str(path))
            storage = kinds.pop()
            info["storage_identifier"] = storage
            res.notes.append(f"storage_identifier is empty: {storage}, from the file names")
            fixes = True
        open_mcaps = [r for r in rel if r.lower().endswith(".mcap")
                      and not mcap_is_complete(path / r)]
        if open_mcaps:
            # a split bag whose last file is still being written: read the files directly
            res.notes.append(f"{', '.join(open_mcaps)}: no MCAP footer; the files are read "
                             "directly instead of through metadata.yaml")
            listed = info.get("topics_with_message_count", [])
            res.expected = {t["topic_metadata"]["name"]: int(t.get("message_count", 0))
                            for t in listed}
            index = [(t["topic_metadata"]["name"], t["topic_metadata"]["type"]) for t in listed]
            res.paths = [_readable_file(path / r, res, index) for r in rel]
            return res
        if not fixes:
            res.paths = [path]
            return res
        fixed = res.tmpdir() / path.name
        fixed.mkdir()
        for r in rel:
            (fixed / r).symlink_to((path / r).resolve())
        (fixed / "metadata.yaml").write_text(yaml.safe_dump(meta))
        res.paths = [fixed]
        return res
    except BaseException:
        res.cleanup()
        raise
