"""SNN4 model library (no rclpy): neurons, surrogate gradients, spiking layers, the
SNN4-HybridNet with its attention bridge, streaming inference, datasets, training (one run:
``TrainRun`` / ``run_training``), evaluation (``evaluate.evaluate``), checkpoints and the
shipped-model zoo."""

from . import checkpoint
from .datasets import FrameData, load_dataset
from .hybridnet import (PRESETS, HybridNet, HybridNetConfig, HybridOutput, StreamingRunner,
                        preset_config)
from .neurons import ALIF, CUBALIF, LIF, PLIF, TCLIF, make_neuron
from .surrogate import Surrogate, SurrogateSchedule
from .train import TrainConfig
from .training_run import TrainRun, run_training
from .zoo import find_model

__all__ = ["PRESETS", "HybridNet", "HybridNetConfig", "HybridOutput", "StreamingRunner",
           "preset_config", "ALIF", "CUBALIF", "LIF", "PLIF", "TCLIF", "make_neuron",
           "Surrogate", "SurrogateSchedule", "checkpoint", "FrameData", "load_dataset",
           "TrainConfig", "TrainRun", "run_training", "find_model"]
