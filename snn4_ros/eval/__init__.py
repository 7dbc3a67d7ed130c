"""Replay evaluation: recordings through the live code path -> metrics and a report (no rclpy)."""
