"""The application layer: the ``snn4`` command line, the demo and the orchestration of
processes (parallel replays). The top of the layering: it may import every other layer."""
