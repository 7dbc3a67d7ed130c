"""snn4_ros: event-camera perception with spiking neural networks, for ROS 2.

Layers, each importing only from the ones before it (tests/test_import_contract.py checks):
``events`` -> ``models`` -> ``runtime`` -> ``eval`` -> ``dashboard`` -> ``ros`` -> ``app``.
Only ``ros`` imports rclpy; its nodes are thin adapters over the core layers.
"""

__version__ = "0.1.0"
