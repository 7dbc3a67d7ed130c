"""Control core (no rclpy): gesture/track decisions -> safe velocity commands."""

from .controller import Action, Command, ControllerConfig, GestureController

__all__ = ["Action", "Command", "ControllerConfig", "GestureController"]
