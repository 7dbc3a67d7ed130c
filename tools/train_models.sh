#!/usr/bin/env bash
# Reproduces the shipped models in models/ (CPU, 2 cores; each recipe prints its time).
#   tools/train_models.sh [nmnist|gesture|real|stream|stream-e2e|loihi|convert|all]
#                                         (real, stream and stream-e2e need gesture's model)
#   tools/train_models.sh real-finetune                   (the earlier real-world recipe, not in all)
#   tools/train_models.sh sdsa                            (the spike-driven SDSA variant, not in all)
#   DVSGESTURE=DIR tools/train_models.sh dvsgesture       (the DVS128 Gesture recipe, not in all)
set -euo pipefail
cd "$(dirname "$0")/.."
SNN4=.venv/bin/snn4
NMNIST=${NMNIST:-../shared/data/nmnist_train1k}
what=${1:-all}
mkdir -p out
# each recipe says when it starts and how long it took (the time README and make help cite)
t_all=$SECONDS
step() { echo "train_models.sh: $1 (started $(date -u +%H:%M:%S) UTC)"; t_step=$SECONDS; }
done_step() { echo "train_models.sh: $1 took $(( (SECONDS - t_step) / 60 )) min $(( (SECONDS - t_step) % 60 )) s"; }
# card_data MODEL STEP TEXT: the card's reproduce command and its training data in words
card_data() {
  .venv/bin/python - "$@" <<'PY'
import json, sys
path, step, text = f"models/{sys.argv[1]}.json", sys.argv[2], sys.argv[3]
card = json.load(open(path))
card["reproduce"] = f"tools/train_models.sh {step}"
card["training_data"] = text
json.dump(card, open(path, "w"), indent=2)
PY
}

if [ "$what" = nmnist ] || [ "$what" = all ]; then
  step nmnist
  # 1. held-out estimate: train on 80% of the 1,000 real samples, evaluate on the other 20%
  $SNN4 train --dataset "nmnist:$NMNIST" --preset hybridnet-nmnist --val-split 0.2 \
    --epochs 60 --augment-shift 2 --seed 0 --out out/nmnist_holdout --quiet
  # 2. the shipped model: the same recipe on all 1,000 samples
  $SNN4 train --dataset "nmnist:$NMNIST" --preset hybridnet-nmnist \
    --epochs 60 --augment-shift 2 --seed 0 --out models/nmnist_1k --quiet
  .venv/bin/python - <<'PY'
import json
hold = json.load(open("out/nmnist_holdout.json"))
card = json.load(open("models/nmnist_1k.json"))
card["heldout_evaluation"] = {
    "how": "same command with --val-split 0.2: trained on 80% (stratified, seed 0) of the "
           "1,000 samples, evaluated on the other 20%; the shipped weights are then trained "
           "on all 1,000, so no held-out figure exists for them",
    "command": hold["command"], **hold["metrics"]}
card["reproduce"] = "tools/train_models.sh nmnist"
card["training_data"] = ("the 1,000 real N-MNIST training samples in ../shared/data/nmnist_train1k "
                         "(slayerPytorch NMNISTsmall, CC BY-SA), 10 bins of 30 ms at 34x34")
json.dump(card, open("models/nmnist_1k.json", "w"), indent=2)
PY
  done_step nmnist
fi

if [ "$what" = gesture ] || [ "$what" = all ]; then
  step gesture
  # fresh synthetic clips: training seed 0, validation seed 1, test seed 2 (new sensors each)
  $SNN4 train --dataset synthetic:150 --val synthetic:30:1 --preset hybridnet-s \
    --epochs 20 --seed 0 --out models/hybridnet_gesture_synth --quiet
  $SNN4 eval --model models/hybridnet_gesture_synth --dataset synthetic:30:2 --record \
    --plot out/hybridnet_gesture_synth_confusion.png
  .venv/bin/python - <<'PY'
import json
card = json.load(open("models/hybridnet_gesture_synth.json"))
card["reproduce"] = "tools/train_models.sh gesture"
card["training_data"] = (
    "synthetic DVS (snn4_ros.events.synthetic): 150 clips per class, 0.64 s each, seed 0, each "
    "block of 11 clips on its own simulated sensor; validation 30 per class (seed 1), test 30 per "
    "class (seed 2) on sensors never seen in training")
json.dump(card, open("models/hybridnet_gesture_synth.json", "w"), indent=2)
PY
  done_step gesture
fi

if [ "$what" = real ] || [ "$what" = all ]; then
  step real
  # the real-camera model, the default for cameras, bags and recordings (models/zoo.py): the
  # simulator model's spiking backbone, bridge and head, and a prototype readout for the
  # right-hand wave taught by R-STDP (snn4 teach --base-gestures) from the 12 labelled real
  # DVS128 clips + 4 s of each of two real walking scenes as 'none'. Then the recipe
  # cross-validated: 4 folds, each teaching 9 clips and scoring the other 3 (every clip held
  # out once) and every real recording without a gesture, once with the shipped 'nothing'
  # pair and once with another pair (so that every recording is held out in some folds)
  rm -f models/hybridnet_gesture_real.safetensors models/hybridnet_gesture_real.json \
    models/hybridnet_gesture_real.controller.yaml
  $SNN4 teach --out models/hybridnet_gesture_real --base models/hybridnet_gesture_synth \
    --base-gestures --session ../shared/data/aedat4_dvs128/labels.csv \
    --nothing ../shared/data/aedat2_dvs128/alex_walking_again.aedat@0-4 \
    --nothing ../shared/data/aedat2_dvs128/neal_walking.aedat@0-4 --seed 0
  .venv/bin/python bench/teach.py --gesture right_hand_wave --k 9 --step 3 --folds 4 \
    --rules rstdp --base models/hybridnet_gesture_synth \
    --nothing aedat2_dvs128/alex_walking_again.aedat@0-4,aedat2_dvs128/neal_walking.aedat@0-4 \
    --nothing aedat2_dvs128/alex_walking_for_10secs.aedat@0-4,aedat2_dvs128/cam289_right_clamp_test1.aedat@0-4 \
    | tee out/real_cv.log
  .venv/bin/python - <<'PY'
import json
cv = json.loads(open("out/real_cv.log").read().strip().splitlines()[-1])
r = cv["results"]["rstdp"]
card = json.load(open("models/hybridnet_gesture_real.json"))
card["reproduce"] = "tools/train_models.sh real"
card["training_data"] = (
    "12 real DVS128 right-hand-wave clips (../shared/data/aedat4_dvs128, labels.csv ranges) and "
    "0-4 s of aedat2_dvs128/alex_walking_again.aedat and of neal_walking.aedat as 'none'; "
    "backbone, bridge and head from hybridnet_gesture_synth (simulated events only)")
card["cross_validated"] = {
    "how": "bench/teach.py --gesture right_hand_wave --k 9 --step 3 --folds 4 --rules rstdp "
           "with two 'nothing' pairs: each fold teaches 9 clips (+ 4 s of each recording of the "
           "pair) and scores the other 3 clips and every real recording without a gesture "
           "through the replay and controller code; 4 folds x 2 pairs",
    "clips_recognised": r["recognised"], "per_fold": r["recognised_per_fold"],
    "max_false_commands_per_min_held_out": r["max_false_per_min_held_out"],
    "negatives_held_out_per_recording": r["negatives_held_out_per_recording"],
    "folds": [{k: f[k] for k in ("taught", "nothing", "clips", "negatives_held_out")}
              for f in r["folds"]]}
json.dump(card, open("models/hybridnet_gesture_real.json", "w"), indent=2)
PY
  done_step real
fi

if [ "$what" = stream ] || [ "$what" = all ]; then
  step stream
  # opt-in (not the synthetic source's default: below the 95 % bar on isolated clips, see the
  # README's Onset latency): gesture's spiking backbone unchanged (the real-camera model above
  # is built on it), bridge and heads trained to read the newest 3 bins at every bin of 64
  # synthetic gesture streams (gestures back to back as snn4 record-synthetic makes them, seeds
  # 1000-1063; validation streams 5000-5011; bench/onset.py's labelled bag is seed 3)
  .venv/bin/python tools/train_stream_model.py --base models/hybridnet_gesture_synth \
    --readout-window 3 --epochs 8 --seed 0 --controller '{"debounce": 2}' \
    --out models/hybridnet_gesture_synth_stream
  $SNN4 eval --model models/hybridnet_gesture_synth_stream --dataset synthetic:30:2 --record
  card_data hybridnet_gesture_synth_stream stream \
    "hybridnet_gesture_synth's spiking backbone (unchanged); bridge and heads: 64 synthetic gesture streams of 96 bins (seeds 1000-1063, gestures of 6-30 bins back to back, one simulated sensor per stream, as snn4 record-synthetic makes them); validation: 12 streams (seeds 5000-5011); test: synthetic:30:2 and the labelled bag of bench/onset.py (seed 3)"
  done_step stream
fi

if [ "$what" = stream-e2e ] || [ "$what" = all ]; then
  step stream-e2e
  # opt-in (not the synthetic source's default: below the 95 % bar on isolated clips and more
  # wrong commands at its fastest settings, see the README's Onset latency): the whole network
  # (backbone, bridge, heads) trained from gesture's model on gesture streams by truncated BPTT,
  # the neuron state carried across chunks of 16 bins as it runs live, a loss at every bin over
  # the newest 2 bins (x5 on the first 2 bins after a change), changes anywhere inside a bin;
  # 220 isolated clips (synthetic:20, seed 0) mixed in (models/stream_train.py). Streams: 128,
  # seeds 1000-1127 (validation 5000-5011), away from bench/onset.py's labelled bag (seed 3).
  # One thread: it was made on a shared 2-core machine (the card keeps the time,
  # training.train_seconds_wall)
  OMP_NUM_THREADS=1 .venv/bin/python tools/train_stream_model.py --end-to-end --any-phase \
    --base models/hybridnet_gesture_synth --readout-window 2 --dataset synthetic:20 \
    --val synthetic:3:3 --streams 128 --epochs 28 --lr 1.5e-3 --change-weight 4 \
    --change-bins 2 --seed 0 --workers 1 --controller '{"debounce": 2}' \
    --out models/hybridnet_gesture_synth_e2e
  $SNN4 eval --model models/hybridnet_gesture_synth_e2e --dataset synthetic:30:2 --record
  card_data hybridnet_gesture_synth_e2e stream-e2e \
    "from hybridnet_gesture_synth, every parameter: 128 synthetic gesture streams of 96 bins (seeds 1000-1127, gestures of 6-30 bins back to back with changes anywhere inside a bin, one simulated sensor per stream, as snn4 record-synthetic makes them) and 220 isolated clips (synthetic:20, seed 0); validation: 12 streams (seeds 5000-5011) and synthetic:3:3; test: synthetic:30:2 and the labelled bag of bench/onset.py (seed 3)"
  done_step stream-e2e
fi

if [ "$what" = sdsa ]; then
  step sdsa
  # the spike-driven self-attention variant (not in all, not a default: bench/sdsa.py measures
  # it, the README says where it stands): hybridnet-s-sdsa (SDSA after the last stage, membrane
  # shortcut: binary spikes throughout). A reduced budget, because the gesture recipe's 1,650
  # fresh clips did not fit the time this was made in on a shared 2-core machine: 20 clips
  # per class (seed 0, 220 clips), validation 3 per class (seed 3), 20 epochs, one thread; and
  # hybridnet-s trained by the same reduced recipe beside it (out/hybridnet_gesture_s20, the
  # like-for-like comparison; the shipped hybridnet_gesture_synth had 7.5x the clips)
  for preset in hybridnet-s-sdsa hybridnet-s; do
    out=models/hybridnet_gesture_sdsa
    [ "$preset" = hybridnet-s ] && out=out/hybridnet_gesture_s20
    OMP_NUM_THREADS=1 $SNN4 train --dataset synthetic:20 --val synthetic:3:3 --preset $preset \
      --epochs 20 --seed 0 --out $out --quiet
    $SNN4 eval --model $out --dataset synthetic:30:2 --record
  done
  .venv/bin/python - <<'PY'
import json
card = json.load(open("models/hybridnet_gesture_sdsa.json"))
card["reproduce"] = "tools/train_models.sh sdsa"
card["training_data"] = (
    "synthetic DVS (snn4_ros.events.synthetic): 20 clips per class, 0.64 s each, seed 0, each "
    "block of 11 clips on its own simulated sensor; validation 3 per class (seed 3), test 30 per "
    "class (seed 2) on sensors never seen in training")
card["budget"] = ("reduced: 220 training clips (20 epochs) instead of the gesture recipe's "
                  "1,650 (generating those clips did not fit the time on a "
                  "shared 2-core machine); hybridnet-s trained by the same reduced recipe "
                  "(out/hybridnet_gesture_s20) is the like-for-like comparison")
card["compared_with"] = "out/hybridnet_gesture_s20 (same recipe, preset hybridnet-s): bench/sdsa.py"
card["train_seconds_wall"] = round(sum(card["training"]["history"]["seconds"]))
json.dump(card, open("models/hybridnet_gesture_sdsa.json", "w"), indent=2)
PY
  done_step sdsa
fi

if [ "$what" = real-finetune ]; then
  step real-finetune
  # the earlier real-world recipe, kept for comparison (not shipped: its cross-validated figures
  # miss the bar, see the README): the synthetic model's classifier refitted on real waves,
  # real recordings without a gesture, the real-looking simulator with distractor scenes and
  # the original simulator; 4-fold cross-validated figures in the card, then the
  # simulator-vs-real statistics plot
  $SNN4 finetune-real --init models/hybridnet_gesture_synth --folds 4 --seed 0 \
    --out out/hybridnet_gesture_finetuned
  $SNN4 simstats --plot out/simstats.png
  done_step real-finetune
fi

if [ "$what" = dvsgesture ]; then
  step dvsgesture
  # DVS128 Gesture (IBM; tonic's local layout: DIR/ibmGestureTrain, DIR/ibmGestureTest).
  # Benchmark protocol as in the published anchors: T=16 frames over the whole ~6 s sample
  # (375 ms bins), trained on the 1,077 training samples, scored on the 264 test samples.
  # Published (not measured here): PLIF 97.6 %, SEW-ResNet 97.9 %, Spikformer/Spikingformer
  # 98.3 % at T=16. Add --device cuda (and --compile) on a GPU; --amp is on by default there.
  : "${DVSGESTURE:?set DVSGESTURE=DIR, the DVS128 Gesture folder in the tonic layout}"
  $SNN4 train --dataset "dvsgesture:$DVSGESTURE" --val "dvsgesture:$DVSGESTURE" \
    --preset hybridnet-s --config '{"bin_us": 375000}' --epochs 60 --augment-shift 4 \
    --seed 0 --out models/hybridnet_dvsgesture
  $SNN4 eval --model models/hybridnet_dvsgesture --dataset "dvsgesture:$DVSGESTURE" --record \
    --plot out/hybridnet_dvsgesture_confusion.png
  done_step dvsgesture
fi

if [ "$what" = convert ] || [ "$what" = all ]; then
  step convert
  # ANN-to-SNN conversion (snn4 convert, models/convert.py): the QCFS twin of hybridnet-nmnist
  # (L=8 levels, a learnt clip per layer) trained on the 300 ms windows accumulated into one
  # frame, on the stratified 80 % (seed 0) of the 1,000 real samples; converted (IF neurons,
  # reset by subtraction, half-threshold start, signed spikes) for T=8 bins of 37.5 ms and
  # swept over T=1..32 on the other 20 %. 60 epochs of an ANN at one bin: about 10 min on a
  # shared 2-core CPU (the SNN recipe above trains 60 epochs of 10 bins)
  $SNN4 convert --dataset "nmnist:$NMNIST" --preset hybridnet-nmnist --levels 8 --epochs 60 \
    --augment-shift 2 --val-split 0.2 --seed 0 --steps 8 --compensation signed \
    --out models/nmnist_qcfs --quiet
  .venv/bin/python - <<'PY'
import json
for name in ("models/nmnist_qcfs.json", "models/nmnist_qcfs_ann.json"):
    card = json.load(open(name))
    card["reproduce"] = "tools/train_models.sh convert"
    card["training_data"] = ("800 of the 1,000 real N-MNIST samples in ../shared/data/nmnist_train1k "
                             "(stratified, seed 0; the other 200 held out for the T sweep), each "
                             "300 ms window accumulated into one frame for the ANN twin")
    json.dump(card, open(name, "w"), indent=2)
PY
  done_step convert
fi

if [ "$what" = loihi ] || [ "$what" = all ]; then
  step loihi
  # the Loihi 2 profile: float training (CUBA-LIF in Lava's update order, no batch norm in the
  # backbone), then fixed point: conversion + 3 epochs of quantisation-aware training whose
  # forward pass is Lava's integer arithmetic; the Lava export is written next to it
  $SNN4 train --dataset synthetic:150 --val synthetic:30:1 --preset hybridnet-loihi \
    --epochs 25 --augment-shift 2 --seed 0 --out out/loihi_float --quiet
  $SNN4 loihi quantize --model out/loihi_float --out models/hybridnet_gesture_loihi \
    --dataset synthetic:150 --val synthetic:30:1 --qat-epochs 3
  $SNN4 eval --model out/loihi_float --dataset synthetic:30:2 --record
  $SNN4 eval --model models/hybridnet_gesture_loihi --dataset synthetic:30:2 --record
  .venv/bin/python - <<'PY'
import json
card = json.load(open("models/hybridnet_gesture_loihi.json"))
flt = json.load(open("out/loihi_float.json"))
card["reproduce"] = "tools/train_models.sh loihi"
card["float_model_test_evaluation"] = flt.get("evaluations", [])[-1:]
json.dump(card, open("models/hybridnet_gesture_loihi.json", "w"), indent=2)
PY
  done_step loihi
fi
echo "train_models.sh $what: $(( (SECONDS - t_all) / 60 )) min in all"
