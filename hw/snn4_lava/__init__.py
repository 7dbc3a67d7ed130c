"""The Lava side of snn4_ros (Python 3.10, numpy<2, no torch): the HybridNet's spiking
backbone as Lava processes, the bit-exact check against the torch emulation, and the ROS 2
bridge node. Built only from the ``MODEL.lava.safetensors`` / ``MODEL.lava.json`` export."""
