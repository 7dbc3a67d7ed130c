"""HTTP health, metrics and control (no rclpy)."""
