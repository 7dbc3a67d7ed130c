"""How a node process lives and dies: ``spin_node`` (the entry point of every node
executable), SIGTERM as KeyboardInterrupt, and children that die with their parent."""

from __future__ import annotations

import os
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor


def die_with_parent() -> None:
    """In a child process: get SIGTERM when `snn4 up` dies, even by SIGKILL (Linux), so no
    dashboard or bridge outlives its graph."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def raise_on_sigterm() -> None:
    """SIGTERM, and SIGINT, end the spin as KeyboardInterrupt. SIGINT explicitly too: a
    process started from a background shell job inherits SIGINT ignored (Python then installs
    no handler of its own), and ``ros2 launch`` stops its nodes with SIGINT."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    except ValueError:          # not the main thread: the caller handles its own signals
        pass


def freeze_startup_heap() -> None:
    """Everything alive once a node is built (modules, torch, a model) moves out of the
    garbage collector's reach: a full collection over it paused the whole process for
    100+ ms on a slow CPU, a stall every thread of a real-time node feels
    (``runtime.gc_pauses``). Later garbage is collected as before."""
    import gc

    gc.collect()
    gc.freeze()


def spin_node(node_cls, args=None) -> None:
    """Entry point body of one node as its own process (``ros2 run snn4_ros NAME``).
    SIGINT and SIGTERM end the spin with the context still valid: the controller's zero
    command on the way out is really published."""
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    raise_on_sigterm()
    node = node_cls()
    if getattr(node, "freeze_gc", True):
        freeze_startup_heap()
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    try:
        while True:
            # a bounded wait: with rclpy's own signal handling off, Python's handlers only
            # run between waits (an idle node would never notice SIGTERM otherwise)
            ex.spin_once(timeout_sec=0.25)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        import signal
        # a second signal (Ctrl-C, then the parent's terminate) must not cut the shutdown short
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if hasattr(node, "stop_robot"):
            try:
                node.stop_robot()            # zero on the way out
            except Exception:
                pass
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        # Everything that matters is done (the zero command acknowledged, the node and the
        # context gone). Skip the interpreter's finalization: with torch loaded it takes
        # 1.5-4 s, longer than ros2 launch waits after SIGINT before escalating to SIGTERM.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
