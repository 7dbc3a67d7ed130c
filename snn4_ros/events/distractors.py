"""Synthetic scenes with no command gesture, and sensors that look like a real DVS128.

Why: a gesture classifier that has only seen gestures names a gesture for every scene. The
"none" outcome needs examples of what a robot's camera sees when nobody commands it: people
walking past or standing up, objects moved by hand, the camera itself moving, flickering
lights, a person standing still, an empty room's sensor noise. Each kind is rendered as an
intensity image per step and turned into events by the same pixel model as the gestures
(``DVSSimulator``), on a sensor drawn by ``random_sensor``.

``random_sensor`` draws sensor parameters from ranges around what the shared real DVS128
recordings show (``snn4 simstats`` measures both and plots them side by side): background
activity 0.01-0.3 Hz per pixel (the gesture clips: ~0.013 Hz in their quiet blocks, ~0.1 Hz
over the whole frame), 0.05-0.8 % hot pixels at 5-40 Hz (the clips: ~0.4 %), ON share of
the noise 0.45-0.55 and OFF thresholds 0.8-1.02x the ON ones (the clips: 45 % ON events),
contrast thresholds 0.15-0.4. Deterministic by seed.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .array import EventArray
from .synthetic import DVSSimulator, SensorConfig, seg_dist

DISTRACTORS = ("walker", "object", "ego_motion", "flicker", "still", "stand_up", "noise")


def random_sensor(rng: np.random.Generator, width: int = 128, height: int = 128) -> SensorConfig:
    """A sensor drawn around the statistics of the real DVS128 clips (see module doc)."""
    return SensorConfig(
        width=width, height=height,
        threshold=float(rng.uniform(0.15, 0.4)),
        threshold_sigma=float(rng.uniform(0.02, 0.06)),
        refractory_us=int(rng.uniform(200, 1500)),
        noise_hz=float(math.exp(rng.uniform(math.log(0.01), math.log(0.3)))),
        hot_pixel_fraction=float(rng.uniform(0.0005, 0.008)),
        hot_pixel_hz=float(rng.uniform(5, 40)),
        noise_on_fraction=float(rng.uniform(0.45, 0.55)),
        off_threshold_scale=float(rng.uniform(0.8, 1.02)))


def _soft(d: np.ndarray, edge: float = 1.5) -> np.ndarray:
    return np.clip(0.5 - d / edge, 0, 1)


def person_sdf(px, py, cx, cy, k, phase: float = 0.0, swing: float = 0.0):
    """Signed distance to a filled person (head, torso, arms, legs) centred at the chest;
    ``swing`` (radians) swings arms and legs as in walking, at ``phase``."""
    head = np.hypot(px - cx, py - (cy - 27 * k)) - 8 * k
    torso = np.maximum(np.abs(px - cx) - 12 * k, np.abs(py - (cy + 8 * k)) - 22 * k)
    d = np.minimum(head, torso)
    a = swing * math.sin(phase)
    for side, sgn in ((-1, 1), (1, -1)):
        sh = (cx + side * 14 * k, cy - 12 * k)
        ang = math.pi / 2 + sgn * a
        hand = (sh[0] + 30 * k * math.cos(ang), sh[1] + 30 * k * math.sin(ang))
        d = np.minimum(d, seg_dist(px, py, sh[0], sh[1], hand[0], hand[1]) - 3.5 * k)
        hip = (cx + side * 6 * k, cy + 30 * k)
        ang = math.pi / 2 - sgn * a
        foot = (hip[0] + 32 * k * math.cos(ang), hip[1] + 32 * k * math.sin(ang))
        d = np.minimum(d, seg_dist(px, py, hip[0], hip[1], foot[0], foot[1]) - 4.5 * k)
    return d


class DistractorScene:
    """One scene of the kind ``kind`` with its own random layout and motion."""

    def __init__(self, kind: str, rng: np.random.Generator, w: int, h: int):
        if kind not in DISTRACTORS:
            raise ValueError(f"unknown distractor {kind!r}; kinds: {', '.join(DISTRACTORS)}")
        self.kind, self.rng, self.w, self.h = kind, rng, w, h
        s = min(w, h) / 128.0
        self.bg = 0.25 + rng.uniform(-0.08, 0.08)
        self.fg = float(np.clip(self.bg + rng.choice([-1, 1]) * rng.uniform(0.15, 0.5), 0.05, 1))
        self.k = s * math.exp(rng.uniform(math.log(0.35), math.log(1.6)))
        self.x0, self.y0 = rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.7) * h
        self.v = rng.uniform(15, 90) * s * rng.choice([-1, 1])          # px/s
        self.vy = rng.uniform(-10, 10) * s
        self.freq = rng.uniform(0.6, 2.0)
        self.coef = rng.normal(size=(4, 3))
        self.obj_r = rng.uniform(4, 22) * s
        self.obj_rect = bool(rng.integers(2))
        # a textured static world for ego-motion (edges of random blobs and bars)
        n = int(rng.integers(6, 20))
        self.blobs = np.stack([rng.uniform(-0.5, 1.5, n) * w, rng.uniform(-0.5, 1.5, n) * h,
                               rng.uniform(4, 25, n) * s, rng.uniform(-0.25, 0.25, n)], 1)
        self.ego = (rng.uniform(-60, 60) * s, rng.uniform(-40, 40) * s,
                    rng.uniform(-0.4, 0.4), rng.uniform(0.5, 3.0))   # vx, vy, rot rad/s, shake Hz
        self.flicker_hz = float(rng.choice([rng.uniform(2, 15), rng.uniform(45, 120)]))
        self.flicker_box = (rng.uniform(0, 0.7) * w, rng.uniform(0, 0.7) * h,
                            rng.uniform(8, 40) * s, rng.uniform(8, 40) * s)

    def render(self, px: np.ndarray, py: np.ndarray, t: float) -> np.ndarray:
        """Intensity image at time ``t`` (seconds)."""
        img = np.full(px.shape, self.bg, np.float32)
        kind, k = self.kind, self.k
        if kind == "walker":
            cx = self.x0 + self.v * t
            cy = self.y0 + self.vy * t + 1.5 * k * abs(math.sin(2 * math.pi * self.freq * t))
            d = person_sdf(px, py, cx, cy, k, 2 * math.pi * self.freq * t, 0.45)
            img += (self.fg - self.bg) * _soft(d)
        elif kind == "stand_up":
            u = 0.5 - 0.5 * math.cos(math.pi * min(1.0, t * self.freq * 0.8))
            cy = self.y0 + 22 * k * (1 - u)
            d = person_sdf(px, py, self.x0, cy, k, 0.0, 0.0)
            img += (self.fg - self.bg) * _soft(d)
        elif kind == "still":                 # standing person, breathing sway
            cx = self.x0 + 1.2 * k * math.sin(2 * math.pi * 0.3 * t)
            d = person_sdf(px, py, cx, self.y0, k, 0.0, 0.0)
            img += (self.fg - self.bg) * _soft(d)
        elif kind == "object":                # an object moved by a hand along a smooth path
            c = self.coef
            f = self.freq
            ox = self.x0 + 25 * k * (c[0, 0] * math.sin(f * t * 2.1 + c[0, 1])
                                     + 0.5 * c[0, 2] * math.sin(f * t * 4.3))
            oy = self.y0 + 20 * k * (c[1, 0] * math.sin(f * t * 1.7 + c[1, 1])
                                     + 0.5 * c[1, 2] * math.sin(f * t * 3.1))
            r = self.obj_r
            if self.obj_rect:
                rot = c[2, 0] * t
                dx, dy = px - ox, py - oy
                u = dx * math.cos(rot) + dy * math.sin(rot)
                v = -dx * math.sin(rot) + dy * math.cos(rot)
                d = np.maximum(np.abs(u) - r, np.abs(v) - 0.6 * r)
            else:
                d = np.hypot(px - ox, py - oy) - r
            d = np.minimum(d, np.hypot(px - ox, py - (oy + r + 3 * k)) - 4 * k)   # the hand
            img += (self.fg - self.bg) * _soft(d)
        elif kind == "ego_motion":            # the camera moves over a static textured room
            vx, vy, rot, shake = self.ego
            a = rot * t
            sx = vx * t + 2 * math.sin(2 * math.pi * shake * t)
            sy = vy * t + 2 * math.cos(2 * math.pi * shake * t * 1.3)
            cxm, cym = self.w / 2, self.h / 2
            qx = (px - cxm) * math.cos(a) - (py - cym) * math.sin(a) + cxm + sx
            qy = (px - cxm) * math.sin(a) + (py - cym) * math.cos(a) + cym + sy
            for bx, by, br, bc in self.blobs:
                img += bc * _soft(np.hypot(qx - bx, qy - by) - br)
        elif kind == "flicker":               # a lamp or a screen (plus a still person)
            x, y, bw, bh = self.flicker_box
            box = _soft(np.maximum(np.abs(px - x - bw / 2) - bw / 2,
                                   np.abs(py - y - bh / 2) - bh / 2))
            img += box * 0.3 * (1 + math.sin(2 * math.pi * self.flicker_hz * t))
            img += (self.fg - self.bg) * _soft(person_sdf(px, py, self.x0, self.y0, k))
        # "noise": an empty static room: only the sensor's own events
        return np.log(np.maximum(img, 1e-3))


def distractor_clip(kind: str, seed: int, duration_s: float = 0.64, width: int = 128,
                    height: int = 128, dt_us: int = 2000, sensor: SensorConfig | None = None,
                    warmup_s: float = 0.05) -> EventArray:
    """Events of one distractor scene, t=0 after a short warm-up; deterministic by seed."""
    rng = np.random.default_rng(seed)
    sensor = replace(sensor, width=width, height=height) if sensor is not None \
        else random_sensor(rng, width, height)
    dvs = DVSSimulator(sensor, rng)
    scene = DistractorScene(kind, rng, width, height)
    py, px = np.mgrid[0:height, 0:width].astype(np.float32)
    scene_t0 = float(rng.uniform(0, 2.0))    # somewhere along the motion
    warm = max(1, int(warmup_s * 1e6 / dt_us))
    steps = max(1, int(round(duration_s * 1e6 / dt_us)))
    parts = []
    for i in range(warm + steps + 1):
        t_s = scene_t0 + i * dt_us * 1e-6
        ev = dvs.step(scene.render(px, py, t_s), i * dt_us * 1000, (i + 1) * dt_us * 1000)
        if i > warm:
            parts.append(ev)
    ev = np.concatenate(parts)
    ev["t"] -= (warm + 1) * dt_us * 1000
    return EventArray(ev, width, height)
