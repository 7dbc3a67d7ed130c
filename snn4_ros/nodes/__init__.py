"""ROS 2 nodes: thin adapters over the core (events, models, control)."""
