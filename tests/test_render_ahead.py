"""The synthetic source's render-ahead child process (events/render_ahead.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from snn4_ros.events.render_ahead import RenderAhead

# a player that starts a renderer, prints both pids, then waits to be killed
PLAYER = textwrap.dedent("""
    import time
    from snn4_ros.events.render_ahead import RenderAhead

    if __name__ == "__main__":          # the renderer is spawned: the main module is imported
        ra = RenderAhead(seed=1)        # the event_source node's queue
        stream = ra.chunks()            # kept: a dropped generator closes the renderer
        next(stream)
        time.sleep(8)                   # rendered ahead: the queue's pipe is full
        print(ra._proc.pid, flush=True)
        time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:              # a zombie is gone for our purposes
        return f.read().split(") ")[-1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_player_killed_with_sigkill_takes_its_renderer_with_it(tmp_path):
    """kill -9 of a process playing the synthetic source (snn4 up, the event_source node) sets
    no stop event: the renderer, blocked on its full queue, must notice its parent is gone
    instead of staying behind as an orphan that renders for no one -- nor hang on its way
    out, joining the queue's feeder thread blocked on a full pipe (seen with the node's
    default queue, not with a tiny one)."""
    script = tmp_path / "player.py"
    script.write_text(PLAYER)
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(p.stdout.readline())
        assert _alive(child)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the renderer outlived its killed player"
    finally:
        p.kill()


def test_close_stops_the_renderer_and_the_stream_is_deterministic_by_seed():
    a, b = RenderAhead(seed=3), RenderAhead(seed=3)
    try:
        ca, cb = a.chunks(), b.chunks()
        for _ in range(20):
            x, y = next(ca), next(cb)
            assert (x.events == y.events).all() and x.label == y.label
    finally:
        a.close(), b.close()
    assert not a._proc.is_alive() and not b._proc.is_alive()
