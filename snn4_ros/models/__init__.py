"""SNN4 model library (no rclpy): neurons, surrogate gradients, spiking layers, the
SNN4-HybridNet with its attention bridge, streaming inference, training and evaluation."""

from .hybridnet import (PRESETS, HybridNet, HybridNetConfig, HybridOutput, StreamingRunner,
                        preset_config)
from .neurons import ALIF, CUBALIF, LIF, PLIF, TCLIF, make_neuron
from .surrogate import Surrogate, SurrogateSchedule

__all__ = ["PRESETS", "HybridNet", "HybridNetConfig", "HybridOutput", "StreamingRunner",
           "preset_config", "ALIF", "CUBALIF", "LIF", "PLIF", "TCLIF", "make_neuron",
           "Surrogate", "SurrogateSchedule"]
