"""The bounded worker behind the inference node's and the Lava bridge's subscriptions: items
in order, the bound (oldest dropped, counted), errors counted without stopping the loop."""

import threading
import time

from snn4_ros.ros.worker import BoundedWorker


def wait_for(cond, timeout_s=5.0):
    t_end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < t_end, "timed out"
        time.sleep(0.005)


def test_items_are_handled_in_order():
    seen = []
    w = BoundedWorker(seen.append, maxlen=100)
    for i in range(50):
        assert w.put(i)
    wait_for(lambda: w.processed == 50)
    w.stop()
    assert seen == list(range(50)) and w.dropped == 0 and w.errors == 0


def test_a_full_queue_drops_the_oldest_and_counts_it():
    gate = threading.Event()
    seen = []

    def handle(item):
        gate.wait(5.0)
        seen.append(item)

    w = BoundedWorker(handle, maxlen=3)
    w.put("first")                                # taken by the worker, blocks on the gate
    wait_for(lambda: len(w) == 0)
    accepted = [w.put(i) for i in range(6)]       # 0..5 into a queue of 3
    assert accepted == [True, True, True, False, False, False]
    assert w.dropped == 3 and len(w) == 3
    gate.set()
    wait_for(lambda: w.processed == 4)
    w.stop()
    assert seen == ["first", 3, 4, 5]


def test_errors_are_counted_reported_and_the_loop_goes_on():
    reported = []

    def handle(item):
        if item % 2:
            raise ValueError(f"odd {item}")

    w = BoundedWorker(handle, maxlen=10, on_error=reported.append)
    for i in range(6):
        w.put(i)
    wait_for(lambda: w.processed == 6)
    w.stop()
    assert w.errors == 3 and w.last_error == "ValueError: odd 5"
    assert reported == ["ValueError: odd 1", "ValueError: odd 3", "ValueError: odd 5"]


def test_stop_ends_the_thread():
    w = BoundedWorker(lambda item: None, maxlen=1)
    w.stop()
    assert not w.thread.is_alive()
