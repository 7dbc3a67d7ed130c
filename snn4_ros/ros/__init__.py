"""The ROS 2 layer: thin nodes over the core (events, models, runtime), the process
lifecycle of a node, the graph description and ``snn4 up``'s in-process graph. The only
layer that imports rclpy."""
