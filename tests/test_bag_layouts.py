"""Every ROS 2 bag layout real users have opens, or is refused with a reason.

Each bag here is written by the test in that layout: rosbags' writer for the plain, split
and compressed layouts; the ``mcap`` package, the way rosbag2 writes it, for MCAP files
whose schemas are rosidl IDL (``ros2idl``) and for a recording that is still running.
"""

import shutil

import numpy as np
import pytest
import yaml

from snn4_ros.events import EventDataError, PacketEncoder, inspect_recording, make_events
from snn4_ros.events.bags import (EVENT_PACKET, BagWriter, bag_topics, packet_to_rosbags,
                                  read_bag, typestore)

TOPIC = "/event_camera/events"


def _events(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 2_000_000, n)) * 1000, rng.integers(0, 128, n),
                       rng.integers(0, 128, n), rng.integers(0, 2, n))


@pytest.fixture(scope="module")
def stream():
    ev = _events()
    pkts = [PacketEncoder("evt3", 128, 128).encode(c) for c in np.array_split(ev, 20)]
    return ev, pkts


def _write(path, pkts, storage="mcap", compression=None):
    if compression is None:
        with BagWriter(path, storage) as w:
            for p in pkts:
                w.write_packet(p)
        return path
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    ts = typestore()
    w = Writer(path, version=9, storage_plugin={"mcap": StoragePlugin.MCAP,
                                                "sqlite3": StoragePlugin.SQLITE3}[storage])
    w.set_compression(getattr(CompressionMode, compression.upper()), CompressionFormat.ZSTD)
    w.open()
    conn = w.add_connection(TOPIC, EVENT_PACKET, typestore=ts)
    for p in pkts:
        w.write(conn, p.stamp_ns, ts.serialize_cdr(packet_to_rosbags(p), EVENT_PACKET))
    w.close()
    return path


def _meta(path):
    return yaml.safe_load((path / "metadata.yaml").read_text())


def _set_meta(path, meta):
    (path / "metadata.yaml").write_text(yaml.safe_dump(meta))


def _check(path, ev, note=None):
    ea, stats, info = read_bag(path)
    assert np.array_equal(ea.events, ev)
    assert info["encoding"] == "evt3" and info["topic"] == TOPIC and stats.skipped_packets == 0
    if note is not None:
        assert any(note in n for n in info["notes"]), info["notes"]
    return info


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_empty_storage_identifier_is_inferred_from_the_files(tmp_path, stream, storage):
    ev, pkts = stream
    bag = _write(tmp_path / "b", pkts, storage)
    meta = _meta(bag)
    meta["rosbag2_bagfile_information"]["storage_identifier"] = ""
    _set_meta(bag, meta)
    before = (bag / "metadata.yaml").read_text()
    _check(bag, ev, f"storage_identifier is empty: {storage}")
    assert (bag / "metadata.yaml").read_text() == before          # nothing written there
    assert inspect_recording(bag)["events"] == len(ev)


def _idl(pkg, name, fields, includes=()):
    """A message as rosidl_adapter writes it to IDL (what rosbag2 embeds as ros2idl)."""
    inc = "".join(f'#include "{i}.idl"\n' for i in includes)
    body = "".join(f"      {f}\n" for f in fields)
    return (f"// generated from rosidl_adapter/resource/msg.idl.em\n"
            f"// with input from {pkg}/msg/{name}.msg\n"
            f"// generated code does not contain a copyright notice\n\n{inc}\n"
            f"module {pkg} {{\n  module msg {{\n"
            f'    @verbatim (language="comment", text=\n'
            f'      "A {name} as the driver publishes it.")\n'
            f"    struct {name} {{\n{body}    }};\n  }};\n}};\n")


SEP = "=" * 80 + "\n"
HEADER_IDL = _idl("std_msgs", "Header", ["builtin_interfaces::msg::Time stamp;", "string frame_id;"],
                  ["builtin_interfaces/msg/Time"])
TIME_IDL = ("module builtin_interfaces {\n  module msg {\n    struct Time {\n"
            "      int32 sec;\n      uint32 nanosec;\n    };\n  };\n};\n")
EVENT_PACKET_IDL = _idl("event_camera_msgs", "EventPacket", [
    "std_msgs::msg::Header header;", "uint32 height;", "uint32 width;", "uint64 seq;",
    "uint64 time_base;", "string encoding;", "boolean is_bigendian;", "sequence<uint8> events;"],
    ["std_msgs/msg/Header"])


def _ros2idl(top, deps):
    """rosbag2's layout of a ros2idl schema: the type's IDL, then each dependency's."""
    return top + "".join(f"\n{SEP}IDL: {name}\n{text}" for name, text in deps)


def _write_rosbag2_style_mcap(path, pkts, finish=True, unknown_type=True):
    """An MCAP file the way rosbag2's mcap plugin writes it, schemas as ros2idl."""
    from mcap.writer import CompressionType, Writer

    ts = typestore()
    f = open(path, "wb")
    w = Writer(f, compression=CompressionType.NONE, chunk_size=4096)
    w.start(profile="ros2", library="rosbag2")
    sid = w.register_schema(EVENT_PACKET, "ros2idl", _ros2idl(EVENT_PACKET_IDL, [
        ("std_msgs/msg/Header", HEADER_IDL), ("builtin_interfaces/msg/Time", TIME_IDL)]).encode())
    cid = w.register_channel(TOPIC, "cdr", sid, {"offered_qos_profiles": ""})
    if unknown_type:
        # a vendor type whose IDL rosbags cannot parse either: its topic must not matter
        sid2 = w.register_schema("acme_msgs/msg/Status", "ros2idl",
                                 _idl("acme_msgs", "Status", ["@key uint8 level;"]).encode())
        cid2 = w.register_channel("/acme/status", "cdr", sid2, {"offered_qos_profiles": ""})
        w.add_message(cid2, 1, b"\x00\x01\x00\x00\x07", 1)
    for p in pkts:
        raw = ts.serialize_cdr(packet_to_rosbags(p), EVENT_PACKET)
        w.add_message(cid, p.stamp_ns, bytes(raw), p.stamp_ns)
    if finish:
        w.finish()
    else:
        f.flush()          # a recorder still running: chunks on disk, no summary, no footer
    f.close()
    return path


def test_ros2idl_schemas_do_not_matter_for_known_types(tmp_path, stream):
    """rosbag2 embeds rosidl IDL; rosbags cannot parse it, our types never need it."""
    from rosbags.highlevel import AnyReader

    ev, pkts = stream
    mcap = _write_rosbag2_style_mcap(tmp_path / "rec_0.mcap", pkts)
    with pytest.raises(Exception, match="parse"):            # the bug, reproduced
        with AnyReader([mcap]) as r:
            pass
    _check(mcap, ev)
    topics = {t.topic: t for t in bag_topics(mcap)}
    assert topics[TOPIC].messages == 20 and topics["/acme/status"].messages == 1
    # the same file inside a rosbag2 folder whose metadata leaves the storage empty
    bag = tmp_path / "rec"
    bag.mkdir()
    shutil.move(mcap, bag / "rec_0.mcap")
    _set_meta(bag, {"rosbag2_bagfile_information": {
        "version": 9, "storage_identifier": "", "relative_file_paths": ["rec_0.mcap"],
        "duration": {"nanoseconds": 1}, "starting_time": {"nanoseconds_since_epoch": 0},
        "message_count": 21, "compression_format": "", "compression_mode": "",
        "topics_with_message_count": [
            {"message_count": 20, "topic_metadata": {
                "name": TOPIC, "type": EVENT_PACKET, "serialization_format": "cdr",
                "offered_qos_profiles": [], "type_description_hash": "RIHS01_" + "0" * 64}},
            {"message_count": 1, "topic_metadata": {
                "name": "/acme/status", "type": "acme_msgs/msg/Status",
                "serialization_format": "cdr", "offered_qos_profiles": []}}]}})
    _check(bag, ev, "storage_identifier is empty: mcap")


def _split(tmp_path, pkts, storage, name="split"):
    """A split bag: two storage files listed in one metadata.yaml (as rosbag2 --max-bag-size)."""
    a = _write(tmp_path / "a", pkts[:9], storage)
    b = _write(tmp_path / "b", pkts[9:], storage)
    suf = ".mcap" if storage == "mcap" else ".db3"
    bag = tmp_path / name
    bag.mkdir()
    shutil.copy(a / f"a{suf}", bag / f"{name}_0{suf}")
    shutil.copy(b / f"b{suf}", bag / f"{name}_1{suf}")
    meta, mb = _meta(a), _meta(b)["rosbag2_bagfile_information"]
    info = meta["rosbag2_bagfile_information"]
    info["relative_file_paths"] = [f"{name}_0{suf}", f"{name}_1{suf}"]
    info["files"] = [dict(info["files"][0], path=f"{name}_0{suf}"),
                     dict(mb["files"][0], path=f"{name}_1{suf}")]
    info["message_count"] = len(pkts)
    info["topics_with_message_count"][0]["message_count"] = len(pkts)
    _set_meta(bag, meta)
    return bag


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_split_bags(tmp_path, stream, storage):
    ev, pkts = stream
    bag = _split(tmp_path, pkts, storage)
    _check(bag, ev)
    (bag / "metadata.yaml").unlink()                 # and without its index
    info = _check(bag, ev, "no metadata.yaml: read the 2 storage file(s)")
    assert info["messages"] == 20


@pytest.mark.parametrize("mode", ["file", "message"])
def test_zstd_compressed_bags(tmp_path, stream, mode):
    ev, pkts = stream
    bag = _write(tmp_path / "z", pkts, "mcap", compression=mode)
    _check(bag, ev)
    meta = _meta(bag)
    meta["rosbag2_bagfile_information"]["storage_identifier"] = ""
    _set_meta(bag, meta)
    _check(bag, ev, "storage_identifier is empty: mcap")
    if mode == "file":
        (bag / "metadata.yaml").unlink()
        _check(bag, ev, "zstd-compressed file, decompressed")


def test_missing_metadata_is_reindexed_from_the_files(tmp_path, stream):
    ev, pkts = stream
    for storage in ("mcap", "sqlite3"):
        bag = _write(tmp_path / storage, pkts, storage)
        (bag / "metadata.yaml").unlink()
        _check(bag, ev, "no metadata.yaml")


def test_bag_still_being_recorded(tmp_path, stream):
    """No metadata.yaml yet, an MCAP without summary or footer whose last chunk is cut: every
    complete chunk reads, the tail is named."""
    ev, pkts = stream
    bag = tmp_path / "live"
    bag.mkdir()
    f = _write_rosbag2_style_mcap(bag / "live_0.mcap", pkts, finish=False, unknown_type=False)
    ea, stats, info = read_bag(bag)
    assert np.array_equal(ea.events, ev[:len(ea)]) and len(ea) > 0
    assert any("no MCAP footer" in n for n in info["notes"])
    complete = len(ea)
    # cut the file inside its last chunk: the complete chunks before it still read
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 700])
    with pytest.raises(EventDataError, match="ends inside a record"):
        read_bag(bag)                                # strict: refused, with the reason
    ea, stats, info = read_bag(bag, strict=False)    # lenient: what is there, loss counted
    assert 0 < len(ea) < complete and np.array_equal(ea.events, ev[:len(ea)])
    assert any("ends inside a record" in n for n in info["notes"]), info["notes"]
    assert stats.skipped_packets == 1 and "ends inside a record" in stats.last_error


def test_layouts_that_cannot_be_read_are_refused_clearly(tmp_path, stream):
    ev, pkts = stream
    bag = _write(tmp_path / "b", pkts)
    meta = _meta(bag)
    meta["rosbag2_bagfile_information"]["relative_file_paths"] = ["b.mcap", "b_1.mcap"]
    _set_meta(bag, meta)
    with pytest.raises(EventDataError, match=r"lists files that are not there: \['b_1.mcap'\]"):
        read_bag(bag)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [")
    with pytest.raises(EventDataError, match="metadata.yaml is unreadable.*move it away"):
        read_bag(bag)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EventDataError, match="folder is not a ROS 2 bag .*and not an N-MNIST folder"):
        read_recording_any(empty)
    (tmp_path / "x.mcap").write_bytes(b"not an mcap at all")
    with pytest.raises(EventDataError, match="not an MCAP file"):
        read_bag(tmp_path / "x.mcap")


def read_recording_any(path):
    from snn4_ros.events import read_recording
    return read_recording(path)


def test_multi_file_commands_report_a_bad_file_and_go_on(tmp_path, stream, capsys):
    """`snn4 inspect A B C` and `snn4 replay A B C`: the unreadable file is named, the rest
    are done, the exit status says something failed; --strict stops at the first."""
    import json

    from snn4_ros.app.cli import main as snn4

    ev, pkts = stream
    good = _write(tmp_path / "good", pkts)
    also = _write(tmp_path / "also", pkts)
    empty = tmp_path / "empty.aedat4"
    empty.write_bytes(b"")
    rc = snn4(["inspect", str(good), str(empty), str(also), "--json"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1 and [o.get("events") for o in out] == [len(ev), None, len(ev)]
    assert "error" in out[1] and out[1]["path"] == str(empty)
    assert snn4(["inspect", str(good), str(empty), str(also), "--strict"]) == 2
    assert "empty.aedat4" in capsys.readouterr().err
    rc = snn4(["replay", str(good), str(empty), str(also), "--json", "--jobs", "1"])
    cap = capsys.readouterr()
    res = json.loads(cap.out.splitlines()[-1])
    assert rc == 1 and res["events"] == 2 * len(ev)
    assert [f["recording"] for f in res["failed_recordings"]] == [str(empty)]
    assert f"{empty}: not replayed" in cap.err
    assert snn4(["replay", str(good), str(empty), "--json", "--strict", "--jobs", "1"]) == 2
