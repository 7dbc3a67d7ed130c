"""The cross-validated estimate of the shipped N-MNIST recipe alone: the baseline arm of
bench/ablation.py on all k folds of each seed (``--cv-only``); the same arguments.

    python bench/nmnist_cv.py [--epochs 2] [--seeds 0 1 2] [--folds 5] [--resume]

Writes bench/results/nmnist_cv_eE.json, E the budget (bench/ablation.py writes it too, sharing fold 0 with the
ablation's baseline); last line: one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ablation  # noqa: E402

if __name__ == "__main__":
    sys.exit(ablation.main(["--cv-only", *sys.argv[1:]]))
