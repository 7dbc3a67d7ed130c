"""Runtime (no rclpy): the perception pipeline (packets -> frames -> streaming HybridNet ->
decisions) and the gesture controller it feeds (decisions -> safe velocity commands).
The inference and controller nodes, the demo and both replays run this same code."""

from .control import Action, Command, ControllerConfig, GestureController
from .pipeline import BinResult, Decision, GeometryError, PerceptionPipeline

__all__ = ["Action", "Command", "ControllerConfig", "GestureController", "BinResult",
           "Decision", "GeometryError", "PerceptionPipeline"]
