"""HTTP health, metrics and control (no rclpy): the state the graph reports to, its
Prometheus exposition and the FastAPI app; the ``dashboard`` node (snn4_ros.ros) feeds it."""

from .app import DashboardSecurityError, check_bind, create_app
from .metrics import metrics_text
from .state import DashboardState

__all__ = ["DashboardSecurityError", "DashboardState", "check_bind", "create_app",
           "metrics_text"]
