"""Train the simulator model on gesture streams (models/streams.py, models/stream_train.py).

    python tools/train_stream_model.py --base models/hybridnet_gesture_synth \
        --readout-window 3 --out models/hybridnet_gesture_synth_stream  # tools/train_models.sh stream
    python tools/train_stream_model.py --end-to-end --any-phase --dataset synthetic:150 ...
        # tools/train_models.sh stream-e2e

Without ``--end-to-end`` the spiking backbone stays the base model's (the real-camera model
is built on it and is not touched); the bridge and heads learn to read the newest
``--readout-window`` bins at every bin of synthetic streams (gestures back to back, as in the
labelled bag, on other seeds; a stream's first gesture starts from rest, as an isolated clip
does), optionally with isolated clips (``--dataset``). With ``--end-to-end`` the whole
network learns (truncated BPTT over ``--chunk-bins`` chunks of each stream, the state carried
across chunks as it runs live; a loss at every bin; isolated clips mixed in). Prints the
validation figures (streams on other seeds; isolated clips with ``--val``) and writes the
checkpoint with its card; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="models/hybridnet_gesture_synth")
    ap.add_argument("--out", required=True)
    ap.add_argument("--readout-window", type=int, default=3)
    ap.add_argument("--dataset", default="",
                    help="isolated training clips besides the streams (e.g. synthetic:150, or "
                         "several joined by '+'; default none: a stream's first gesture starts "
                         "from rest too)")
    ap.add_argument("--val", default="", help="isolated validation clips (e.g. synthetic:30:1)")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--stream-seed", type=int, default=1000)
    ap.add_argument("--val-streams", type=int, default=12)
    ap.add_argument("--val-stream-seed", type=int, default=5000)
    ap.add_argument("--stream-bins", type=int, default=96)
    ap.add_argument("--segment-bins", default="6,30", help="min,max bins of one gesture")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--change-weight", type=float, default=1.0)
    ap.add_argument("--change-bins", type=int, default=3)
    ap.add_argument("--end-to-end", action="store_true",
                    help="train backbone, bridge and heads together (models/stream_train.py)")
    ap.add_argument("--any-phase", action="store_true",
                    help="gesture changes anywhere inside a bin (else on bin boundaries)")
    ap.add_argument("--chunk-bins", type=int, default=16, help="--end-to-end: BPTT chunk")
    ap.add_argument("--stream-batch", type=int, default=8)
    ap.add_argument("--clips-per-epoch", type=int, default=0,
                    help="--end-to-end: isolated clips drawn per epoch (0: all)")
    ap.add_argument("--lr", type=float, default=None,
                    help="learning rate (default 2e-3 readout, 1e-3 end to end)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--controller", default="{}",
                    help="JSON: the controller settings the model is validated with (its "
                         "card's 'controller', which snn4 replay applies; snn4 up and the "
                         "launch file take them as parameters)")
    args = ap.parse_args(argv)

    import torch

    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import FrameData, load_dataset
    from snn4_ros.models.evaluate import evaluate
    from snn4_ros.models.stream_train import StreamTrainConfig, train_streams_end_to_end
    from snn4_ros.models.streams import (StreamReadoutConfig, onset_figures, stream_data,
                                         stream_predictions, train_stream_readout)
    from snn4_ros.models.zoo import find_model

    torch.set_num_threads(args.threads)
    t_all = time.time()
    net, base_card = checkpoint.load(find_model(args.base))
    seg = tuple(int(v) for v in args.segment_bins.split(","))
    t0 = time.time()
    streams = stream_data(args.streams, net.cfg, seed=args.stream_seed, bins=args.stream_bins,
                          seg_bins=seg, workers=args.workers, any_phase=args.any_phase)
    val_streams = stream_data(args.val_streams, net.cfg, seed=args.val_stream_seed,
                              bins=args.stream_bins, seg_bins=seg, workers=args.workers,
                              any_phase=args.any_phase)
    print(f"streams: {len(streams)} training ({streams.changes()} changes), "
          f"{len(val_streams)} validation ({val_streams.changes()} changes), "
          f"{time.time() - t0:.0f} s", flush=True)
    clips = None
    for spec in filter(None, args.dataset.split("+")):     # several sets: joined
        d = load_dataset(spec, net.cfg, train=True)
        clips = d if clips is None else FrameData(
            torch.cat([clips.frames, d.frames]), torch.cat([clips.labels, d.labels]),
            clips.classes, None if clips.targets is None or d.targets is None else
            torch.cat([clips.targets, d.targets]), f"{clips.source}+{d.source}")
    val = load_dataset(args.val, net.cfg, train=False) if args.val else None
    base_val = {**({"clips_accuracy": evaluate(net, val)["accuracy"]} if val else {}),
                **onset_figures(stream_predictions(net, val_streams), val_streams.labels)}
    print(f"base model on validation: {json.dumps(base_val)}", flush=True)
    if args.end_to_end:
        cfg = StreamTrainConfig(readout_window=args.readout_window, epochs=args.epochs,
                                chunk_bins=args.chunk_bins, stream_batch=args.stream_batch,
                                clips_per_epoch=args.clips_per_epoch, lr=args.lr or 1e-3,
                                change_weight=args.change_weight, change_bins=args.change_bins,
                                seed=args.seed)
        hist = train_streams_end_to_end(net, streams, clips, cfg,
                                        log=lambda m: print(m, flush=True))
        what = ("every parameter (backbone, bridge, heads) trained from the base model on "
                "synthetic gesture streams by truncated BPTT (state carried across chunks, a "
                "loss at every bin over the newest readout_window bins) with the isolated "
                "training clips mixed in (models/stream_train.py)")
        hist_keys = ("stream_loss", "clip_loss", "stream_acc", "stream_acc_after_change",
                     "seconds")
    else:
        cfg = StreamReadoutConfig(readout_window=args.readout_window, epochs=args.epochs,
                                  change_weight=args.change_weight,
                                  change_bins=args.change_bins, seed=args.seed,
                                  lr=args.lr or 2e-3)
        hist = train_stream_readout(net, streams, clips, cfg,
                                    log=lambda m: print(m, flush=True))
        what = ("the base model's spiking backbone unchanged; bridge and heads trained "
                "on the newest readout_window bins of every bin of synthetic gesture "
                "streams and of the isolated training clips (models/streams.py)")
        hist_keys = ("loss", "train_acc", "seconds")
    ev = evaluate(net, val) if val else {}
    probs = stream_predictions(net, val_streams)
    figs = {**({"clips_accuracy": ev["accuracy"], "mean_decision_bins":
                ev["mean_decision_bins"]} if ev else {}),
            **{f"debounce {d}": onset_figures(probs, val_streams.labels, debounce=d)
               for d in (1, 2, 3)},
            "debounce 1, p >= 0.9": onset_figures(probs, val_streams.labels, debounce=1,
                                                  min_confidence=0.9)}
    print(f"validation: {json.dumps(figs)}", flush=True)
    command = "python tools/train_stream_model.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    card = {
        "training": {
            "base": str(args.base), "dataset": args.dataset or None,
            "validation": args.val or None,
            "streams": streams.source, "validation_streams": val_streams.source,
            "what": what, "config": hist["config"],
            "history": {k: hist[k] for k in hist_keys},
            "train_seconds_wall": round(time.time() - t_all)},
        "metrics": {**({k: ev[k] for k in ("accuracy", "n", "mean_decision_bins")}
                       if ev else {}), "validation_streams": figs},
        "base_model_validation": base_val,
        "command": command,
    }
    if json.loads(args.controller):
        card["controller"] = json.loads(args.controller)
    checkpoint.save(net, args.out, card)
    print(json.dumps({"out": args.out, "readout_window": args.readout_window,
                      "validation": figs, "base_validation": base_val,
                      "seconds": round(time.time() - t_all)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
