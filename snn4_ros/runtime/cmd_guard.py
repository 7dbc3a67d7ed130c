"""A command watchdog between a velocity source and the robot base (no rclpy here).

Why: the gesture controller zeroes the robot on every fault it can see, but a controller
that is itself killed (``kill -9``, OOM killer, a segfault) sends nothing more, and its
last non-zero command stays the last word on ``cmd_vel``. A base driver with a command
timeout (``diff_drive_controller``'s ``cmd_vel_timeout``) stops by itself; one without, or
``twist_mux`` (which sends nothing when every input has gone silent), does not. The guard
relays every command unchanged and, when its input has been silent for ``timeout_s`` of real
time, sends zeros for ``zero_for_s`` -- then goes quiet again like its input, so a mux
behind it sees a silent input, not a stream of zeros that outranks nothing.

It is a separate process with no model and no perception: what makes the controller die
(memory, a stuck library) is not in it. If it is killed too, the base's own timeout is the
last line.

``CmdVelGuard`` is the state machine, on times the caller supplies (the node's steady clock,
so a frozen ``/clock`` does not freeze the watchdog); ``tests/test_cmd_guard.py`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuardConfig:
    timeout_s: float = 0.25     # input silent this long (real time) -> zero
    zero_for_s: float = 1.0     # keep sending zeros this long, then stay quiet

    def __post_init__(self):
        if not self.timeout_s > 0 or not self.zero_for_s >= 0:
            raise ValueError(f"timeout_s must be > 0 and zero_for_s >= 0, got {self}")


class CmdVelGuard:
    """Relay state: ``on_input`` for every command from the source, ``tick`` at the guard's
    rate; ``tick`` says whether to send a zero now."""

    def __init__(self, cfg: GuardConfig = GuardConfig()):
        self.cfg = cfg
        self.last_input: float | None = None     # time of the last command from the source
        self.last_nonzero = False                # was that command a motion?
        self.relayed = 0
        self.zeros_sent = 0
        self.silences = 0                        # times the input fell silent
        self._silent = False

    def on_input(self, now: float, linear: float, angular: float) -> None:
        self.last_input = now
        self.last_nonzero = bool(linear or angular)
        self.relayed += 1
        self._silent = False

    def state(self, now: float) -> str:
        """``waiting`` (no input yet), ``relaying``, ``zeroing`` (input silent, zeros going
        out) or ``silent`` (input silent, zeros sent)."""
        if self.last_input is None:
            return "waiting"
        quiet = now - self.last_input
        if quiet <= self.cfg.timeout_s:
            return "relaying"
        return "zeroing" if quiet <= self.cfg.timeout_s + self.cfg.zero_for_s else "silent"

    def tick(self, now: float) -> bool:
        """True: send a zero command now (the input has been silent past the timeout). At
        least one zero goes out per silence, however late the tick that notices it."""
        st = self.state(now)
        if st not in ("zeroing", "silent"):
            return False
        first = not self._silent
        if first:
            self._silent = True
            self.silences += 1
        if st == "zeroing" or first:
            self.zeros_sent += 1
            return True
        return False
