"""Live iniVation cameras through dv-processing (DVS128, DAVIS, DVXplorer).

No camera is attached on the development machines: ``iter_camera`` then raises
``CameraNotFoundError`` with the list of what dv-processing discovered and what to check.
"""

from __future__ import annotations

from typing import Iterator

from .array import make_events
from .errors import EventDataError
from .stream import Chunk


class CameraNotFoundError(EventDataError):
    """No (matching) event camera is connected."""


def discover() -> list[str]:
    """Serial numbers / names of the cameras dv-processing can see."""
    import dv_processing as dv

    return [str(d) for d in dv.io.camera.discover()]


def open_camera(serial: str | None = None):
    import dv_processing as dv

    found = discover()
    if not found:
        raise CameraNotFoundError(
            "no iniVation camera found: check the USB cable, the udev rules "
            "(dv-processing's 65-inivation.rules) and that no other program holds the camera")
    if serial is not None and not any(serial in f for f in found):
        raise CameraNotFoundError(f"no camera with serial {serial!r}; found: {', '.join(found)}")
    try:
        cam = dv.io.camera.open(serial) if serial else dv.io.camera.open()
    except Exception as exc:
        raise CameraNotFoundError(f"opening the camera failed: {exc}") from None
    if not cam.isEventStreamAvailable():
        raise CameraNotFoundError(f"camera {cam.getCameraName()} has no event stream")
    return cam


def iter_camera(serial: str | None = None) -> Iterator:
    """Chunks of events from a live camera, as they arrive."""
    cam = open_camera(serial)
    w, h = cam.getEventResolution()
    while cam.isRunning():
        batch = cam.getNextEventBatch()
        if batch is None:
            continue
        a = batch.numpy()
        yield Chunk(make_events(a["timestamp"] * 1000, a["x"], a["y"], a["polarity"]), w, h)
