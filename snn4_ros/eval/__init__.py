"""Replay evaluation (no rclpy): recordings through the live code path in process
(``inprocess.replay`` -> ``ReplayTrace``), the figures (``metrics.compute_metrics``) and the
report (``report.write_report``). The ROS replay (``ros.dds_replay``) fills the same trace."""

from .inprocess import ReplayOptions, ReplayTrace, TraceRecorder, model_facts, replay
from .metrics import compute_metrics
from .report import write_report

__all__ = ["ReplayOptions", "ReplayTrace", "TraceRecorder", "model_facts", "replay",
           "compute_metrics", "write_report"]
