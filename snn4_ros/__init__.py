"""snn4_ros: event-camera perception with spiking neural networks, for ROS 2.

Core modules (``events``, ``models``, ``control``, ``eval``, ``dashboard``) never import
rclpy; the ROS nodes under ``snn4_ros.nodes`` are thin adapters over them.
"""

__version__ = "0.1.0"
