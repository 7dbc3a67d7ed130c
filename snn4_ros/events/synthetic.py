"""A synthetic DVS: a person performing the 11 DVS128-Gesture classes, plus a moving target.

Why a simulator: it makes the whole stack runnable and testable without a camera, and gives
labelled training data (class, and target position over time) at any resolution.

The scene is rendered as an intensity image every ``dt_us`` (soft-edged shapes: a static
body, two two-segment arms with hands, and a square target), then turned into events the way
a DVS pixel does: each pixel keeps the log intensity of its last event and fires ON/OFF events
when the log intensity has moved by its own contrast threshold (per-pixel mismatch), subject
to a refractory period; background-activity noise and hot pixels are added on top.
Timestamps are interpolated inside each render step. Everything is deterministic by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .array import EVENT_DTYPE, EventArray, make_events

GESTURES = ("hand_clap", "right_hand_wave", "left_hand_wave", "right_arm_cw", "right_arm_ccw",
            "left_arm_cw", "left_arm_ccw", "arm_roll", "air_drums", "air_guitar", "other")


@dataclass
class SensorConfig:
    """The simulated sensor. Thresholds are in log-intensity units."""

    width: int = 128
    height: int = 128
    threshold: float = 0.25
    threshold_sigma: float = 0.03
    refractory_us: int = 500
    noise_hz: float = 0.2            # background activity per pixel
    hot_pixel_fraction: float = 0.0005
    hot_pixel_hz: float = 50.0
    max_events_per_step: int = 3     # per pixel and render step
    noise_on_fraction: float = 0.5   # ON share of the background activity
    off_threshold_scale: float = 1.0  # OFF threshold / ON threshold (< 1: more OFF events)


@dataclass
class SceneConfig:
    dt_us: int = 2000                # render step
    target: bool = True              # a square target moving across the view
    speed_jitter: float = 0.3        # gestures run at 1 +- this times their nominal speed
    pose_jitter: float = 0.08        # body position and size jitter, as a fraction of the view
    # "stick": thin two-segment arms on a head and torso (the original look); "filled": a
    # filled silhouette (legs, thick forearms, a hand with fingers), as a DVS sees a person
    style: str = "stick"
    # performer size as a multiple of the default (which fills ~3/4 of the view's height),
    # drawn log-uniformly; None: the default size +- pose jitter. (0.4, 2.2) spans the small
    # far person of the shared DVS128 clips to a close-up where the hand is a fifth of the view
    scale_range: tuple[float, float] | None = None

    def __post_init__(self):
        if self.style not in ("stick", "filled"):
            raise ValueError(f"style must be 'stick' or 'filled', got {self.style!r}")
        if self.scale_range is not None:
            a, b = self.scale_range
            if not 0 < a <= b:
                raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")


@dataclass
class GestureLabel:
    gesture: int
    t_start_ns: int
    t_end_ns: int

    @property
    def name(self) -> str:
        return GESTURES[self.gesture]


@dataclass
class SyntheticClip:
    events: EventArray
    labels: list[GestureLabel]
    target: np.ndarray               # [N, 4]: t_ns, x, y, visible (pixels)


def seg_dist(px, py, ax, ay, bx, by):
    """Distance from every pixel to the segment a-b."""
    dx, dy = bx - ax, by - ay
    L2 = dx * dx + dy * dy + 1e-9
    u = np.clip(((px - ax) * dx + (py - ay) * dy) / L2, 0.0, 1.0)
    return np.hypot(px - (ax + u * dx), py - (ay + u * dy))


class GestureScene:
    """Kinematics of one performer: joint angles of both arms as functions of time."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, cfg: SceneConfig):
        s = min(w, h) / 128.0
        j = cfg.pose_jitter
        if cfg.scale_range is None:
            self.scale = s * (1 + rng.uniform(-j, j) * 1.5)
            self.cx = w / 2 + rng.uniform(-j, j) * w
            self.cy = h / 2 + rng.uniform(-j, j) * h * 0.5
        else:                  # anywhere that keeps the shoulders in view, at any size
            lo, hi = cfg.scale_range
            self.scale = s * math.exp(rng.uniform(math.log(lo), math.log(hi)))
            k = self.scale
            self.cx = w / 2 + rng.uniform(-0.3, 0.3) * w
            self.cy = float(np.clip(h / 2 + rng.uniform(-0.15, 0.15) * h, 18 * k,
                                    max(18 * k, h - 4 * k)))
        self.speed = 1 + rng.uniform(-cfg.speed_jitter, cfg.speed_jitter)
        self.phase = rng.uniform(0, 2 * math.pi)
        self.rng = rng
        self.w, self.h = w, h
        self.other_kind = int(rng.integers(0, 3))
        self.noise_coef = rng.normal(size=(4, 3))
        self.body = 0.55 + rng.uniform(-0.05, 0.05)
        self.arm = 0.85 + rng.uniform(-0.05, 0.05)
        self.bg = 0.25 + rng.uniform(-0.05, 0.05)

    def points(self, g: int, t: float):
        """Shoulders, elbows and hands of both arms at time t (seconds)."""
        k = self.scale
        sh_y = self.cy - 14 * k
        right_sh = (self.cx - 14 * k, sh_y)   # performer's right is image left
        left_sh = (self.cx + 14 * k, sh_y)
        w = 2 * math.pi * self.speed * t + self.phase
        l1, l2 = 16 * k, 15 * k
        rest = (math.pi / 2 + 0.25, math.pi / 2 - 0.25)   # arms hanging, image y down
        name = GESTURES[g]

        def arm(sh, a1, a2):
            e = (sh[0] + l1 * math.cos(a1), sh[1] + l1 * math.sin(a1))
            hnd = (e[0] + l2 * math.cos(a1 + a2), e[1] + l2 * math.sin(a1 + a2))
            return sh, e, hnd

        def reach(sh, hand):
            """Two-link arm reaching for a hand position (elbow bent outwards)."""
            dx, dy = hand[0] - sh[0], hand[1] - sh[1]
            d = min(math.hypot(dx, dy), l1 + l2 - 1e-3)
            base = math.atan2(dy, dx)
            c = max(-1.0, min(1.0, (l1 * l1 + d * d - l2 * l2) / (2 * l1 * d + 1e-9)))
            side = -1 if sh[0] < self.cx else 1
            a1 = base + side * math.acos(c)
            e = (sh[0] + l1 * math.cos(a1), sh[1] + l1 * math.sin(a1))
            return sh, e, hand

        R = arm(right_sh, rest[0], 0.0)
        L = arm(left_sh, rest[1], 0.0)
        if name == "hand_clap":
            gap = (3 + 11 * (1 + math.cos(w * 1.3)) / 2) * k
            y = self.cy + 2 * k
            R = reach(right_sh, (self.cx - gap, y))
            L = reach(left_sh, (self.cx + gap, y))
        elif name in ("right_hand_wave", "left_hand_wave"):
            sh = right_sh if name.startswith("right") else left_sh
            side = -1 if sh is right_sh else 1
            a1 = math.pi + 0.35 if side < 0 else -0.35           # upper arm out to the side
            a2 = (math.pi / 2 + 0.45 * math.sin(w * 1.6)) * (1 if side < 0 else -1)
            arm_pts = arm(sh, a1, a2)
            R, L = (arm_pts, L) if side < 0 else (R, arm_pts)
        elif name in ("right_arm_cw", "right_arm_ccw", "left_arm_cw", "left_arm_ccw"):
            sh = right_sh if name.startswith("right") else left_sh
            direction = 1 if name.endswith("_cw") else -1
            a = direction * w * 0.9
            arm_pts = arm(sh, a, 0.0)
            R, L = (arm_pts, L) if name.startswith("right") else (R, arm_pts)
        elif name == "arm_roll":
            r = 6 * k
            c = (self.cx, self.cy + 4 * k)
            R = reach(right_sh, (c[0] - 4 * k + r * math.cos(w * 1.5), c[1] + r * math.sin(w * 1.5)))
            L = reach(left_sh, (c[0] + 4 * k + r * math.cos(w * 1.5 + math.pi),
                                c[1] + r * math.sin(w * 1.5 + math.pi)))
        elif name == "air_drums":
            s1 = max(0.0, math.sin(w * 1.8)) ** 2
            s2 = max(0.0, math.sin(w * 1.8 + math.pi)) ** 2
            R = reach(right_sh, (self.cx - 16 * k, self.cy + (4 + 12 * s1) * k))
            L = reach(left_sh, (self.cx + 16 * k, self.cy + (4 + 12 * s2) * k))
        elif name == "air_guitar":
            L = reach(left_sh, (self.cx + 27 * k, self.cy - 4 * k + 1.5 * k * math.sin(w * 0.7)))
            R = reach(right_sh, (self.cx - 3 * k, self.cy + (8 + 7 * math.sin(w * 2.2)) * k))
        else:  # "other": slow random reaching, scratching, or near stillness
            amp = (12, 5, 1.5)[self.other_kind] * k
            c = self.noise_coef
            f = (0.35, 1.1, 0.2)[self.other_kind]
            hx = amp * (c[0, 0] * math.sin(f * w + c[0, 1]) + 0.5 * c[0, 2] * math.sin(2.3 * f * w))
            hy = amp * (c[1, 0] * math.sin(f * w + c[1, 1]) + 0.5 * c[1, 2] * math.sin(1.7 * f * w))
            R = reach(right_sh, (self.cx - 16 * k + hx, self.cy + 10 * k + hy))
        return R, L

    def target(self, t: float, seed_coef: np.ndarray) -> tuple[float, float]:
        c = seed_coef
        x = self.w * (0.5 + 0.38 * math.sin(0.5 * t * c[0] + c[1]))
        y = self.h * (0.5 + 0.38 * math.sin(0.37 * t * c[2] + c[3]))
        return x, y


def _legs(px, py, cx, cy, k):
    """Two filled legs below the torso (static: a person gesturing stands still)."""
    hip = cy + 30 * k
    d = np.minimum(seg_dist(px, py, cx - 6 * k, hip, cx - 8 * k, hip + 30 * k),
                   seg_dist(px, py, cx + 6 * k, hip, cx + 8 * k, hip + 30 * k)) - 4.5 * k
    return np.clip(0.5 - d / 1.5, 0, 1)


def _filled_arms(px, py, arms, k):
    """Signed distance to filled arms: thick upper arm and forearm, a palm and four fingers
    pointing along the forearm (what makes a waving hand's events a blob, not a dot).
    Computed only inside the arms' bounding box (the rest stays far): ~5x faster."""
    d = np.full(px.shape, 1e9, np.float32)
    pts = np.array([p for arm in arms for p in arm])
    pad = 14 * k + 3
    h, w = px.shape
    x0, x1 = int(max(0, pts[:, 0].min() - pad)), int(min(w, pts[:, 0].max() + pad + 1))
    y0, y1 = int(max(0, pts[:, 1].min() - pad)), int(min(h, pts[:, 1].max() + pad + 1))
    if x0 >= x1 or y0 >= y1:
        return d
    qx, qy = px[y0:y1, x0:x1], py[y0:y1, x0:x1]
    dc = d[y0:y1, x0:x1]
    for sh, e, hnd in arms:
        dc = np.minimum(dc, seg_dist(qx, qy, sh[0], sh[1], e[0], e[1]) - 4.0 * k)
        dc = np.minimum(dc, seg_dist(qx, qy, e[0], e[1], hnd[0], hnd[1]) - 3.2 * k)
        dc = np.minimum(dc, np.hypot(qx - hnd[0], qy - hnd[1]) - 4.5 * k)
        ux, uy = hnd[0] - e[0], hnd[1] - e[1]
        n = math.hypot(ux, uy) + 1e-9
        ux, uy = ux / n, uy / n
        for f in (-1.5, -0.5, 0.5, 1.5):               # fingers, spread across the palm
            bx, by = hnd[0] - uy * f * 2.4 * k, hnd[1] + ux * f * 2.4 * k
            tx = bx + (ux - uy * f * 0.15) * 7.5 * k
            ty = by + (uy + ux * f * 0.15) * 7.5 * k
            dc = np.minimum(dc, seg_dist(qx, qy, bx, by, tx, ty) - 1.0 * k)
    d[y0:y1, x0:x1] = dc
    return d


class DVSSimulator:
    """Pixel model turning a sequence of log-intensity images into events."""

    def __init__(self, cfg: SensorConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        h, w = cfg.height, cfg.width
        self.c_on = np.clip(rng.normal(cfg.threshold, cfg.threshold_sigma, (h, w)), 0.05, None)
        self.c_off = np.clip(rng.normal(cfg.threshold, cfg.threshold_sigma, (h, w)), 0.05, None)
        if cfg.off_threshold_scale != 1.0:
            self.c_off *= cfg.off_threshold_scale
        n_hot = int(round(cfg.hot_pixel_fraction * h * w))
        self.hot = rng.choice(h * w, size=n_hot, replace=False) if n_hot else np.empty(0, int)
        self.ref: np.ndarray | None = None
        self.last_t = np.full((h, w), -(1 << 40), np.int64)

    def step(self, logi: np.ndarray, t0_ns: int, t1_ns: int) -> np.ndarray:
        """Events for the change from the reference image to ``logi`` during [t0, t1)."""
        cfg, rng = self.cfg, self.rng
        if self.ref is None:
            self.ref = logi.copy()
            return np.empty(0, EVENT_DTYPE)
        diff = logi - self.ref
        pos = diff > 0
        n = np.where(pos, diff / self.c_on, -diff / self.c_off).astype(np.int64)
        np.minimum(n, cfg.max_events_per_step, out=n)
        n[self.last_t > t0_ns - cfg.refractory_us * 1000] = 0
        ys, xs = np.nonzero(n)
        counts = n[ys, xs]
        sign = np.where(pos[ys, xs], 1.0, -1.0)
        thr = np.where(sign > 0, self.c_on[ys, xs], self.c_off[ys, xs])
        self.ref[ys, xs] += sign * counts * thr
        rep = np.repeat(np.arange(len(ys)), counts)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)
        frac = (k + 1) / (counts[rep] + 1)
        t = t0_ns + (frac * (t1_ns - t0_ns)).astype(np.int64)
        ev = [make_events(t, xs[rep], ys[rep], sign[rep] > 0)]
        if len(ys):
            self.last_t[ys, xs] = t0_ns + ((t1_ns - t0_ns) * counts / (counts + 1)).astype(np.int64)
        # background activity and hot pixels
        dt_s = (t1_ns - t0_ns) * 1e-9
        h, w = cfg.height, cfg.width
        m = rng.poisson(cfg.noise_hz * dt_s * h * w)
        if m:
            pix = rng.integers(0, h * w, m)
            t = rng.integers(t0_ns, t1_ns, m)        # draw order kept: same events by seed
            pol = rng.integers(0, 2, m) if cfg.noise_on_fraction == 0.5 \
                else rng.random(m) < cfg.noise_on_fraction
            ev.append(make_events(t, pix % w, pix // w, pol))
        if len(self.hot):
            hits = rng.poisson(cfg.hot_pixel_hz * dt_s, len(self.hot))
            pix = np.repeat(self.hot, hits)
            if len(pix):
                ev.append(make_events(rng.integers(t0_ns, t1_ns, len(pix)), pix % w, pix // w,
                                      rng.integers(0, 2, len(pix))))
        out = np.concatenate(ev) if len(ev) > 1 else ev[0]
        return out[np.argsort(out["t"], kind="stable")]


class GestureSimulator:
    """Labelled synthetic gesture recordings, as clips or as an endless stream.

    >>> sim = GestureSimulator(seed=1)
    >>> clip = sim.clip("right_hand_wave", duration_s=1.0)
    """

    def __init__(self, seed: int = 0, sensor: SensorConfig | None = None,
                 scene: SceneConfig | None = None):
        self.sensor = sensor or SensorConfig()
        self.scene_cfg = scene or SceneConfig()
        if self.sensor.width < 16 or self.sensor.height < 16:
            raise ValueError("the synthetic sensor needs at least 16x16 pixels")
        if self.scene_cfg.dt_us <= 0:
            raise ValueError("dt_us must be positive")
        self.rng = np.random.default_rng(seed)
        self.dvs = DVSSimulator(self.sensor, self.rng)
        h, w = self.sensor.height, self.sensor.width
        self._py, self._px = np.mgrid[0:h, 0:w].astype(np.float32)
        self._bg_tex = self._texture(h, w)
        self._target_coef = self.rng.uniform(0.6, 1.4, 4) * np.array([1, 6, 1, 6])
        self.t_ns = 0
        self.scene = GestureScene(self.rng, w, h, self.scene_cfg)
        self.gesture = 0
        self.t_gesture_start_ns = 0

    def _texture(self, h, w):
        """A static, smooth background: it makes no events of its own, as in a real room."""
        f = self.rng.normal(size=(3, 4))
        yy, xx = self._py / h, self._px / w
        tex = sum(0.04 * f[i, 0] * np.sin(2 * math.pi * (f[i, 1] * xx + f[i, 2] * yy) + f[i, 3])
                  for i in range(3))
        return tex.astype(np.float32)

    def _render(self, g: int, t_s: float) -> tuple[np.ndarray, tuple[float, float]]:
        sc = self.scene
        px, py = self._px, self._py
        img = sc.bg + self._bg_tex
        k = sc.scale
        # body: head and torso (static, soft edges)
        head = np.hypot(px - sc.cx, py - (sc.cy - 27 * k)) - 8 * k
        torso = np.maximum(np.abs(px - sc.cx) - 12 * k, np.abs(py - (sc.cy + 8 * k)) - 22 * k)
        body = np.clip(0.5 - np.minimum(head, torso) / 1.5, 0, 1)
        img = img + (sc.body - sc.bg) * body
        R, L = sc.points(g, t_s)
        if self.scene_cfg.style == "filled":
            if getattr(sc, "_legs", None) is None:          # static: drawn once per scene
                sc._legs = _legs(px, py, sc.cx, sc.cy, k)
            img = img + (sc.body - sc.bg) * sc._legs
            d = _filled_arms(px, py, (R, L), k)
        else:
            d = np.full(px.shape, 1e9, np.float32)
            for sh, e, hnd in (R, L):
                d = np.minimum(d, seg_dist(px, py, sh[0], sh[1], e[0], e[1]) - 2.5 * k)
                d = np.minimum(d, seg_dist(px, py, e[0], e[1], hnd[0], hnd[1]) - 2.0 * k)
                d = np.minimum(d, np.hypot(px - hnd[0], py - hnd[1]) - 4.0 * k)
        arms = np.clip(0.5 - d / 1.5, 0, 1)
        img = img * (1 - arms) + sc.arm * arms
        tx, ty = sc.target(t_s, self._target_coef)
        if self.scene_cfg.target:
            half = 5 * k
            dt = np.maximum(np.abs(px - tx), np.abs(py - ty)) - half
            tgt = np.clip(0.5 - dt / 1.0, 0, 1)
            img = img * (1 - tgt) + 0.95 * tgt
        return np.log(np.maximum(img, 1e-3)), (tx, ty)

    def start_gesture(self, gesture: int | str) -> None:
        """Switch the performer to a new gesture (new pose jitter and speed)."""
        g = GESTURES.index(gesture) if isinstance(gesture, str) else int(gesture)
        if not 0 <= g < len(GESTURES):
            raise ValueError(f"gesture index {g} out of range 0..{len(GESTURES) - 1}")
        self.gesture = g
        self.scene = GestureScene(self.rng, self.sensor.width, self.sensor.height, self.scene_cfg)
        self._target_coef = self.rng.uniform(0.6, 1.4, 4) * np.array([1, 6, 1, 6])
        self.t_gesture_start_ns = self.t_ns

    def step(self) -> tuple[np.ndarray, tuple[float, float, bool]]:
        """Advance one render step; return its events and the target position."""
        t0 = self.t_ns
        t1 = t0 + self.scene_cfg.dt_us * 1000
        logi, (tx, ty) = self._render(self.gesture, (t1 - self.t_gesture_start_ns) * 1e-9)
        ev = self.dvs.step(logi, t0, t1)
        self.t_ns = t1
        visible = bool(self.scene_cfg.target and 0 <= tx < self.sensor.width
                       and 0 <= ty < self.sensor.height)
        return ev, (tx, ty, visible)

    def clip(self, gesture: int | str, duration_s: float = 1.5, warmup_s: float = 0.05
             ) -> SyntheticClip:
        """One labelled recording of a gesture, starting at t=0 after a short warm-up."""
        self.start_gesture(gesture)
        self.dvs.ref = None
        for _ in range(max(1, int(warmup_s * 1e6 / self.scene_cfg.dt_us))):
            self.step()
        t_start = self.t_ns
        steps = max(1, int(round(duration_s * 1e6 / self.scene_cfg.dt_us)))
        parts, tgt = [], np.empty((steps, 4))
        for i in range(steps):
            ev, (tx, ty, vis) = self.step()
            parts.append(ev)
            tgt[i] = (self.t_ns - t_start, tx, ty, vis)
        ev = np.concatenate(parts)
        ev["t"] -= t_start
        labels = [GestureLabel(self.gesture, 0, int(steps * self.scene_cfg.dt_us * 1000))]
        return SyntheticClip(EventArray(ev, self.sensor.width, self.sensor.height), labels, tgt)

    def stream(self, gesture_s: float = 3.0, gestures: list[int] | None = None):
        """Endless (step events, label dict) pairs, changing gesture every ``gesture_s``.

        The gesture sequence is drawn from the seeded generator (or cycles ``gestures``).
        """
        i = 0
        while True:
            g = gestures[i % len(gestures)] if gestures else int(self.rng.integers(len(GESTURES)))
            self.start_gesture(g)
            end = self.t_ns + int(gesture_s * 1e9)
            while self.t_ns < end:
                ev, (tx, ty, vis) = self.step()
                yield ev, {"gesture": g, "name": GESTURES[g], "t_ns": self.t_ns,
                           "gesture_start_ns": self.t_gesture_start_ns,
                           "target": (tx, ty, vis)}
            i += 1
