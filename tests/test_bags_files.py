"""Bags (ROS 2 sqlite3/MCAP, ROS 1), files, and their failure modes."""

import shutil
import sqlite3

import numpy as np
import pytest

from snn4_ros.events import (EventDataError, NoEventsError, PacketEncoder, TruncatedDataError,
                             make_events, read_recording)
from snn4_ros.events.bags import BagWriter, bag_topics, read_bag, typestore
from snn4_ros.events.files import read_aedat2, read_aedat4, read_nmnist, write_aedat4


def _events(n=3000, w=128, h=128, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 2_000_000, n)) * 1000, rng.integers(0, w, n),
                       rng.integers(0, h, n), rng.integers(0, 2, n))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("encoding", ["evt3", "mono", "libcaer_cmp"])
def test_written_bag_reads_back_identically(tmp_path, storage, encoding):
    ev = _events()
    enc = PacketEncoder(encoding, 128, 128)
    pkts = [enc.encode(c) for c in np.array_split(ev, 20)]
    with BagWriter(tmp_path / "b", storage) as w:
        for p in pkts:
            w.write_packet(p)
    ea, stats, info = read_bag(tmp_path / "b")
    assert np.array_equal(ea.events, ev)
    assert info["messages"] == 20 and info["encoding"] == encoding and stats.seq_gaps == 0


def test_event_array_bags_ros1_and_dv_ros2(tmp_path):
    from rosbags.rosbag1 import Writer as Writer1

    ts = typestore()
    ev = _events(50)
    for name, fmt in (("dvs_msgs", "ros1"), ("dv_ros2_msgs", "ros2")):
        Ev, Arr = ts.types[f"{name}/msg/Event"], ts.types[f"{name}/msg/EventArray"]
        Header, Time = ts.types["std_msgs/msg/Header"], ts.types["builtin_interfaces/msg/Time"]
        msgs = []
        for part in np.array_split(ev, 3):
            evs = [Ev(x=int(e["x"]), y=int(e["y"]), ts=Time(sec=int(e["t"]) // 10**9,
                      nanosec=int(e["t"]) % 10**9), polarity=bool(e["p"])) for e in part]
            msgs.append(Arr(header=Header(stamp=Time(sec=1, nanosec=0), frame_id="dvs"),
                            height=128, width=128, events=evs))
        mt = f"{name}/msg/EventArray"
        if fmt == "ros1":
            path = tmp_path / "a.bag"
            with Writer1(path) as w:
                conn = w.add_connection("/dvs/events", mt, typestore=ts)
                for i, m in enumerate(msgs):
                    w.write(conn, i + 1, ts.serialize_ros1(m, mt))
        else:
            path = tmp_path / "dv"
            with BagWriter(path) as w:
                for i, m in enumerate(msgs):
                    w.write("/events", mt, m, i + 1)
        ea, _, info = read_recording(path)
        assert info["msgtype"] == mt and info["messages"] == 3
        assert np.array_equal(ea.events, ev)


def test_bag_errors(tmp_path, shared_data):
    bag = shared_data / "rosbag2/evt3_trigger"
    with pytest.raises(EventDataError, match="no topic '/nope'.*event_camera"):
        read_bag(bag, topic="/nope")
    # a bag without any event topic
    ts = typestore()
    with BagWriter(tmp_path / "noev") as w:
        w.write("/chatter", "std_msgs/msg/String", ts.types["std_msgs/msg/String"](data="hi"), 1)
    with pytest.raises(NoEventsError, match="no event topic.*?/chatter"):
        read_bag(tmp_path / "noev")
    with pytest.raises(EventDataError, match="holds std_msgs/msg/String"):
        read_bag(tmp_path / "noev", topic="/chatter")
    # two event topics: the user must choose
    enc = PacketEncoder("mono", 8, 8)
    with BagWriter(tmp_path / "two") as w:
        w.write_packet(enc.encode(_events(5, 8, 8)), "/a")
        w.write_packet(enc.encode(_events(5, 8, 8, 1)), "/b")
    with pytest.raises(EventDataError, match="several event topics.*/a, /b"):
        read_bag(tmp_path / "two")
    assert len(read_bag(tmp_path / "two", topic="/b")[0]) == 5
    # corrupted database file
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.db3").write_bytes(b"this is not sqlite" * 100)
    shutil.copy(bag / "metadata.yaml", bad / "metadata.yaml")
    with pytest.raises(EventDataError, match="bad"):
        read_bag(bad)
    with pytest.raises(EventDataError, match="no such bag"):
        read_bag(tmp_path / "missing")


def test_corrupted_payload_inside_real_bag(tmp_path, shared_data):
    src = shared_data / "rosbag2/evt3_trigger"
    dst = tmp_path / "c"
    shutil.copytree(src, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    db = sqlite3.connect(dst / "test_data_evt3_trigger_0.db3")
    rows = db.execute("select id, data from messages order by id").fetchall()
    mid, data = rows[10]
    db.execute("update messages set data=? where id=?", (data[: len(data) - 3], mid))
    db.commit()
    db.close()
    with pytest.raises(EventDataError, match="message 10"):
        read_bag(dst)
    ea, stats, _ = read_bag(dst, strict=False)
    assert stats.skipped_packets + stats.truncated_bytes > 0 and stats.last_error
    assert 80_000 < len(ea) < 82_469


def test_empty_event_topic(tmp_path):
    ts = typestore()
    with BagWriter(tmp_path / "e") as w:
        w._conns["/event_camera/events"] = w._writer.add_connection(
            "/event_camera/events", "event_camera_msgs/msg/EventPacket", typestore=ts)
    with pytest.raises(NoEventsError, match="holds no messages"):
        read_bag(tmp_path / "e")


def test_truncated_files(tmp_path, shared_data):
    src = (shared_data / "aedat2_dvs128/alex_walking_again.aedat").read_bytes()
    (tmp_path / "t.aedat").write_bytes(src[:-5])
    with pytest.raises(TruncatedDataError, match="t.aedat: 3 stray bytes"):
        read_aedat2(tmp_path / "t.aedat")
    ea, stats = read_aedat2(tmp_path / "t.aedat", strict=False)
    assert len(ea) + len(ea.triggers) == 19_181 and stats.truncated_bytes == 3
    n = (shared_data / "nmnist_train1k/1.bs2").read_bytes()
    (tmp_path / "n.bs2").write_bytes(n[:-2])
    with pytest.raises(TruncatedDataError, match="n.bs2"):
        read_nmnist(tmp_path / "n.bs2")
    (tmp_path / "x.aedat4").write_bytes(b"#!AER-DAT4.0\r\n garbage")
    with pytest.raises(EventDataError, match="x.aedat4"):
        read_aedat4(tmp_path / "x.aedat4")
    (tmp_path / "y.aedat").write_bytes(b"no header at all")
    with pytest.raises(EventDataError, match="AEDAT 2.0"):
        read_aedat2(tmp_path / "y.aedat")
    (tmp_path / "z.xyz").write_bytes(b"??")
    with pytest.raises(EventDataError, match="unknown recording format"):
        read_recording(tmp_path / "z.xyz")


def test_aedat4_write_read_round_trip(tmp_path, shared_data):
    ea, _, _ = read_recording(shared_data / "aedat4_dvs128/dvSave-2024_06_13_16_16_25.aedat4")
    write_aedat4(tmp_path / "o.aedat4", ea)
    back, _ = read_aedat4(tmp_path / "o.aedat4")
    assert np.array_equal(back.events, ea.events) and (back.width, back.height) == (128, 128)


def test_bag_topics_lists_connections(shared_data):
    t = bag_topics(shared_data / "rosbag2/libcaer_rollover")
    assert [(x.topic, x.messages) for x in t] == [("/event_camera/events", 201)]
