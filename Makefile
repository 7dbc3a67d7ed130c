# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.snn4-deps.stamp
# pip prints one warning per package for this machine's unused local index folders; hide them.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: venv demo test bench bench-env models clean help lava-env lava-check
LOIHI_MODEL ?= models/hybridnet_gesture_loihi
help:
	@echo "make demo   - the ROS 2 perception graph on the synthetic DVS (snn4 up)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - run every benchmark in bench/ (installs the peer frameworks), results in"
	@echo "              bench/results/, then regenerate the README's figures from them"
	@echo "make models - retrain the shipped models in models/ (tens of minutes on 2 cores;"
	@echo "              tools/train_models.sh prints each recipe's time)"
	@echo "make lava-env   - the Lava venv (Python 3.10, lava-nc, numpy<2) in hw/.lava-venv"
	@echo "make lava-check - torch fixed-point emulation vs Lava, spike train by spike train"

$(STAMP): requirements.txt constraints.txt setup.py setup.cfg
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PY)"; $(PY) -m venv $(VENV); }
	@echo "installing the Python dependencies into $(VENV): requirements.txt with torch (CPU)"
	@echo "  pinned by constraints.txt, the ROS 2 wheels, dv-processing; minutes on a cold cache,"
	@echo "  one line per package being fetched:"
	@$(BIN)/pip install -q -U pip $(QUIET_PIP)
	@$(BIN)/pip install -c constraints.txt -r requirements.txt 2>&1 | { grep --line-buffered \
	  -E '^(Collecting|Successfully installed|ERROR|error)' | sed -u 's/^/  pip: /' || true; }
	@echo "installing snn4_ros itself (editable: the snn4 command and the node executables)"
	@$(BIN)/pip install -q --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $@

venv: $(STAMP)
	@tools/build_interfaces.sh $(VENV)
	@tools/ros2_tools.sh $(VENV)

# the synthetic person, and its gestures may drive /snn4/cmd_vel: both switches, said aloud;
# a fresh e-stop token for each demo (out/demo-token, readable by this user only), printed once
demo: venv
	@mkdir -p out && (umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(16))" > out/demo-token)
	@echo "dashboard: http://127.0.0.1:8080/  e-stop token for this run: $$(cat out/demo-token)"
	@echo "make demo: synthetic input (--source synthetic) allowed to move a robot (--simulated-motion) on /snn4/cmd_vel"
	$(BIN)/snn4 up --source synthetic --simulated-motion --dashboard 127.0.0.1:8080 --dashboard-token-file out/demo-token

lava-env:
	@tools/lava_env.sh

# the shipped Loihi model on real (DVS128 AEDAT4, the evt3 bag) and synthetic clips, through
# Lava's Sparse and Conv processes; the last line reads `bit-exact: MATCHED/TOTAL`
lava-check: venv lava-env
	@mkdir -p out
	$(BIN)/snn4 loihi export --model $(LOIHI_MODEL) --check-inputs out/lava_check.npz \
	  --real $(wildcard ../shared/data/aedat4_dvs128/*.aedat4) ../shared/data/rosbag2/evt3_trigger \
	  --synthetic synthetic:n=1,seed=2
	hw/.lava-venv/bin/python hw/lava_run.py check out/lava_check.npz $(LOIHI_MODEL) --connection conv
	hw/.lava-venv/bin/python hw/lava_run.py check out/lava_check.npz $(LOIHI_MODEL)

test: venv lava-env
	@tools/ensure_browser.sh
	$(BIN)/python -m pytest -q tests

bench-env: venv
	$(BIN)/pip install -q -c constraints.txt -r requirements-bench.txt $(QUIET_PIP)

bench: bench-env
	$(BIN)/python bench/events.py
	$(BIN)/python bench/model.py
	$(BIN)/python bench/nmnist_peers.py
	$(BIN)/python bench/replay_throughput.py
	$(BIN)/python bench/dashboard_load.py
	$(BIN)/python bench/lava.py
	$(BIN)/python bench/realworld.py
	$(BIN)/python bench/teach.py
	$(BIN)/python bench/calibration.py
	$(BIN)/python bench/tcl.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ingest.py --mode starved --rates 1,5
	$(BIN)/python bench/nir_roundtrip.py
	$(BIN)/python bench/online.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/ablation.py
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/hot_path.py
	$(BIN)/python bench/onset.py
	$(BIN)/python bench/realtime.py
	$(BIN)/python bench/one_readout.py
	$(BIN)/python bench/readme.py

models: venv
	tools/train_models.sh all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
