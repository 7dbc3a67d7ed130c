"""The newcomer's path: what a new user types first works, and every ordinary mistake ends
in one clear line on stderr and a non-zero exit -- never a traceback.

* ``test_a_mistake_is_one_line`` holds every mistake issue 15 lists (and a few more), run
  through the real ``snn4`` entry function in this process (fast: the imports are shared);
* ``test_the_real_entry_point`` runs a few of them as the installed ``snn4`` executable
  (exit status of a real process; ``--debug`` does show the traceback);
* ``test_the_readme_commands_on_a_fresh_clone`` copies the repository's files (tracked, plus
  untracked ones that are not ignored: what a commit holds) to an empty folder and runs the
  README's "Try it" block there, in order, as a shell script.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snn4_ros.app.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _files_of_a_commit(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f and (root / f).is_file()
            and not (root / f).is_symlink()]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """A small labelled synthetic bag (2 gestures of 1 s)."""
    from snn4_ros.events.recording import record_synthetic

    out = tmp_path_factory.mktemp("newcomer") / "two.bag"
    record_synthetic(out, gestures=2, gesture_s=1.0, seed=3)
    return out


@pytest.fixture(scope="module")
def nmnist_like(tmp_path_factory):
    """A folder that looks like N-MNIST (labels.txt) but is given without ``nmnist:``."""
    d = tmp_path_factory.mktemp("digits")
    (d / "labels.txt").write_text("0 3\n")
    return d


def _mistakes(bag, nmnist_like, tmp):
    """(argv, exit status, what the one line must say)."""
    bad_labels = tmp / "bad.labels.csv"
    bad_params = tmp / "params.yaml"         # as snn4 params / ros2 param dump write them
    bad_graph = tmp / "graph.yaml"           # the shipped graph, one safety limit misspelt
    if tmp.is_dir():
        bad_labels.write_text("start,end,class\n0,10,thumbs_up\n")
        bad_params.write_text("/snn4/gesture_controller:\n  ros__parameters:\n"
                              "    max_linar: 0.2\n")
        graph = (ROOT / "config/perception.yaml").read_text()
        assert "      max_linear:" in graph
        bad_graph.write_text(graph.replace("      max_linear:", "      max_linar:", 1))
    return {
        "eval-unknown-dataset-kind": (
            ["eval", "--model", "hybridnet_gesture_synth", "--dataset", "synth:5"], 2,
            "unknown dataset kind 'synth'; did you mean 'synthetic'?"),
        "eval-synthetic-not-a-number": (
            ["eval", "--model", "hybridnet_gesture_synth", "--dataset", "synthetic:abc"], 2,
            "n wants a whole number, got 'abc' (e.g. synthetic:n=20,seed=1 or synthetic:20:1)"),
        "eval-synthetic-unknown-field": (
            ["eval", "--model", "hybridnet_gesture_synth", "--dataset", "synthetic:sed=3"], 2,
            "no field 'sed'; did you mean 'seed'? (fields: n, seed"),
        "up-source-bare-number": (
            ["up", "--source", "synthetic:3"], 2,
            "a bare number is a dataset's clip count (synthetic:N[:SEED]); a source is an "
            "endless stream: write synthetic:seed=3"),
        "up-source-clip-count": (
            ["up", "--source", "synthetic:n=3"], 2, "n= (clips per class) is a dataset's field"),
        "up-source-unknown-kind": (
            ["up", "--source", "synthetc:1"], 2, "unknown kind 'synthetc'; did you mean "
            "'synthetic'?"),
        "up-source-no-such-recording": (
            ["up", "--source", str(tmp / "missing.mcap")], 2, "no such bag or recording"),
        "up-param-source-checked-too": (
            ["up", "--param", "event_source.source=synthetic:x"], 2,
            "want synthetic:seed=S, S a whole number"),
        "eval-bare-folder": (
            ["eval", "--model", "nmnist_1k", "--dataset", str(nmnist_like)], 2,
            f"has no kind: write KIND:PATH, here probably nmnist:{nmnist_like}"),
        "eval-nmnist-no-such-folder": (
            ["eval", "--model", "nmnist_1k", "--dataset", "nmnist:/nonexistent"], 2,
            "no such folder: /nonexistent"),
        "eval-model-dataset-class-mismatch": (
            ["eval", "--model", "nmnist_1k", "--dataset", "synthetic:1"], 2,
            "nmnist_1k classifies 0, 1, 2, ... (10 classes) but synthetic:1 holds hand_clap"),
        "eval-unknown-model": (
            ["eval", "--model", "hybridnet_gesture_snth", "--dataset", "synthetic:1"], 2,
            "did you mean 'hybridnet_gesture_synth'? (shipped models:"),
        "eval-threshold-above-one": (
            ["eval", "--model", "hybridnet_gesture_synth", "--dataset", "synthetic:1",
             "--threshold", "2"], 2, "argument --threshold: want a probability in (0, 1]"),
        "eval-missing-dataset": (
            ["eval", "--model", "hybridnet_gesture_synth"], 2,
            "the following arguments are required: --dataset"),
        "train-unknown-preset": (
            ["train", "--preset", "hybridnet-xxl", "--dataset", "synthetic:1", "--out",
             str(tmp / "m")], 2, "argument --preset: invalid choice: 'hybridnet-xxl'"),
        "train-bad-config-json": (
            ["train", "--dataset", "synthetic:1", "--out", str(tmp / "m"), "--config", "{x"],
            2, "--config"),
        "record-synthetic-existing-out": (
            ["record-synthetic", "--out", str(bag)], 2,
            f"{bag} already exists: choose another --out"),
        "record-synthetic-unknown-class": (
            ["record-synthetic", "--out", str(tmp / "new.bag"), "--classes",
             "right_hand_wav"], 2,
            "no gesture class 'right_hand_wav'; did you mean 'right_hand_wave'?"),
        "up-param-wrong-type": (
            ["up", "--param", "gesture_controller.max_linear=fast"], 2,
            "gesture_controller.max_linear: wants a number in [0.0, 100.0], got 'fast'"),
        "up-param-unknown-node": (
            ["up", "--param", "nonode.x=1"], 2, "no node 'nonode' in the graph"),
        "up-param-unknown-name": (
            ["up", "--param", "event_source.nonsense=3"], 2,
            "event_source has no parameter 'nonsense'"),
        "up-param-misspelt-safety-limit": (
            ["up", "--param", "gesture_controller.max_linar=0.2"], 2,
            "gesture_controller has no parameter 'max_linar'; did you mean 'max_linear'?"),
        "up-params-file-misspelt-safety-limit": (
            ["up", "--params-file", str(bad_params)], 2,
            "params.yaml: gesture_controller has no parameter 'max_linar'; did you mean "
            "'max_linear'?"),
        "up-graph-yaml-misspelt-safety-limit": (
            ["up", "--graph", str(bad_graph)], 2,
            "graph.yaml: gesture_controller has no parameter 'max_linar'; did you mean "
            "'max_linear'?"),
        "up-param-out-of-range": (
            ["up", "--param", "gesture_controller.max_linear=500"], 2,
            "wants a number in [0.0, 100.0], got 500.0"),
        "up-param-no-value": (
            ["up", "--param", "gesture_controller.max_linear"], 2,
            "--param wants NODE.NAME=VALUE"),
        "up-unknown-graph": (
            ["up", "--graph", "nograph"], 2, "graph description 'nograph' not found"),
        "replay-unknown-model": (
            ["replay", str(bag), "--model", "nope"], 2,
            "no model 'nope' (shipped models: hybridnet_gesture_loihi, hybridnet_gesture_real, "
            "hybridnet_gesture_sdsa, hybridnet_gesture_synth"),
        "replay-label-class-not-the-models": (
            ["replay", str(bag), "--labels", str(bad_labels)], 2,
            "label classes ['thumbs_up'] are not among the classes of model"),
        "replay-no-such-recording": (
            ["replay", str(tmp / "missing.bag")], 2, "missing.bag: no such file"),
        "inspect-no-such-file": (
            ["inspect", str(tmp / "missing.aedat4")], 2, "no such file"),
        "unknown-command": (
            ["trian"], 2, "invalid choice: 'trian'"),
    }


CASES = list(_mistakes(Path("/b"), Path("/n"), Path("/t")))


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line(case, bag, nmnist_like, tmp_path, capfd):
    argv, status, says = _mistakes(bag, nmnist_like, tmp_path)[case]
    try:
        rc = main(argv)
    except SystemExit as e:            # argparse's own mistakes exit from parse_args
        rc = e.code
    out, err = capfd.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == status, (rc, err)
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("snn4"), lines[0]
    assert says in lines[0], lines[0]
    assert not out.strip(), out        # nothing on stdout: no half-done work reported


def _snn4(*args, env=None, timeout=120):
    exe = BIN / "snn4"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "snn4_ros.app.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_the_real_entry_point():
    r = _snn4("up", "--param", "gesture_controller.max_linar=0.2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "did you mean" in r.stderr
    r = _snn4("eval", "--model", "hybridnet_gesture_synth", "--dataset", "synth:5", "--debug")
    assert r.returncode == 2 and "Traceback" in r.stderr          # --debug: the traceback
    assert r.stderr.strip().splitlines()[-1].startswith("snn4 eval: unknown dataset kind")
    r = _snn4("--version")
    assert r.returncode == 0 and re.match(r"snn4 \d+\.\d+", r.stdout), r.stdout


def test_a_bug_is_one_line_too(capfd):
    """Not a user's mistake: still no traceback, but it says so and how to get one."""
    from snn4_ros.app.errors import run_command

    def broken(args):
        raise KeyError("oops")

    assert run_command(broken, None, "snn4 x") == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err


def test_every_flag_has_help_and_says_its_default():
    """help with defaults and choices for every flag, in every command (also ones added
    later): a flag without help fails here."""
    import argparse

    def walk(p, name):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub_name, sub in a.choices.items():
                    yield from walk(sub, f"{name} {sub_name}")
            elif a.option_strings and not isinstance(a, argparse._HelpAction):
                yield name, a, p

    missing, no_default = [], []
    for name, a, p in walk(build_parser(), "snn4"):
        if not a.help:
            missing.append(f"{name} {a.option_strings[0]}")
            continue
        shown = p.formatter_class(prog=p.prog)._get_help_string(a)
        if (a.default not in (None, False, [], argparse.SUPPRESS)
                and "default" not in shown.lower()):
            no_default.append(f"{name} {a.option_strings[0]}")
    assert not missing, f"flags without help: {missing}"
    assert not no_default, f"flags whose help hides the default: {no_default}"


def test_sources_prints_no_markup():
    r = _snn4("sources")
    assert r.returncode == 0 and "``" not in r.stdout and "synthetic" in r.stdout


def _readme_block() -> str:
    """The README's "Try it" block: the fenced bash block whose first line is the marker."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```bash\n# try it[^\n]*\n(.*?)```", text, re.S)
    assert m, "README.md has no ```bash block starting with '# try it'"
    return m.group(1)


def test_the_readme_commands_on_a_fresh_clone(tmp_path):
    """The commands a newcomer copies from the README, in order, in a folder that holds only
    what a clone holds (no out/, no models trained here), the venv activated as the README
    says (.venv is this checkout's: building one takes minutes)."""
    clone = tmp_path / "snn4_ros"
    for f in _files_of_a_commit(ROOT):
        (clone / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, clone / f)
    (clone / ".venv").symlink_to(BIN.parent)
    block = _readme_block()
    commands = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    assert any(c.startswith("source .venv/bin/activate") for c in commands)
    assert len([c for c in commands if c.startswith("snn4 ")]) >= 4
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '+ {c}' >&2\n{c}" for c in commands) + "\n"
    env = {**os.environ, "PYTHONPATH": str(clone)}    # the clone's code, not this checkout's
    env.pop("VIRTUAL_ENV", None)
    r = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, f"{r.stderr[-3000:]}\n{r.stdout[-2000:]}"
    assert "Traceback" not in r.stderr
    # no Python warning on the user's terminal either (numpy's 'Mean of empty slice' once,
    # the renderer's 'leaked semaphore objects' at the end of snn4 up another time)
    noise = re.findall(r"^.*\.py:\d+: \w+Warning: .*$", r.stderr, re.M)
    assert not noise, noise


def test_the_preset_choices_are_the_models_presets():
    from snn4_ros.app.commands.training import PRESETS
    from snn4_ros.models.hybridnet import PRESETS as MODEL_PRESETS

    assert tuple(PRESETS) == tuple(MODEL_PRESETS)


def test_behind_real_time_says_the_fraction():
    from snn4_ros.runtime.realtime import behind_real_time

    assert behind_real_time(2.64, 6.0) == ("behind real time: 0.44x of the 1x asked (2.6 s of "
                                           "data in 6.0 s)")
    assert behind_real_time(5.8, 6.0) is None                  # within 10 %
    assert "of the 2x asked" in behind_real_time(6.0, 6.0, wanted=2.0)
    assert behind_real_time(1.0, 0.0) is None


def test_the_shell_scripts_parse():
    """bash reads a script one command at a time: a quote left open in the last recipe of
    tools/train_models.sh only failed after the earlier recipes had trained for minutes."""
    for sh in sorted((ROOT / "tools").glob("*.sh")):
        r = subprocess.run(["bash", "-n", str(sh)], capture_output=True, text=True)
        assert r.returncode == 0, f"{sh.name}: {r.stderr}"


def test_the_actions_file_is_the_default_mapping():
    """config/gesture_actions.yaml, the file the README tells users to copy, is what the
    controller does without it."""
    import yaml

    from snn4_ros.runtime.control import DEFAULT_ACTIONS, ControllerConfig

    cfg = ControllerConfig.from_dict(yaml.safe_load((ROOT / "config/gesture_actions.yaml")
                                                    .read_text()))
    default = ControllerConfig()
    assert cfg.actions == DEFAULT_ACTIONS
    for name in ("min_confidence", "debounce", "hold_s", "deadman_s", "max_linear",
                 "max_angular"):
        assert getattr(cfg, name) == getattr(default, name), name


def test_eval_on_its_own_training_data_says_so(capfd):
    """The model card knows what the model was trained on: an evaluation on those clips is
    flagged (stderr, the JSON, the summary line), another seed is not."""
    import json

    from snn4_ros.models import checkpoint
    from snn4_ros.models.datasets import training_overlap
    from snn4_ros.models.zoo import DEMO_MODEL, find_model

    card = checkpoint.load_card(find_model(DEMO_MODEL))
    trained_on = card["training"]["dataset"]
    assert trained_on.startswith("synthetic"), trained_on
    from snn4_ros.models.datasets import parse_dataset_spec
    tr = parse_dataset_spec(trained_on, train=True)
    own, fresh = f"synthetic:1:{tr.seed}", f"synthetic:1:{tr.seed + 7}"
    assert "own training data" in training_overlap(card, own)
    assert training_overlap(card, fresh) is None
    assert main(["eval", "--model", DEMO_MODEL, "--dataset", own, "--json"]) == 0
    out, err = capfd.readouterr()
    assert "WARNING evaluated on its own training data" in err, err
    assert json.loads(out.strip().splitlines()[-1])["on_training_data"] is True


def test_replay_metrics_without_spike_counts_warn_nothing(bag):
    """Through the ROS nodes (--via-ros) the spike counts do not travel (NaN): the report
    once printed numpy's 'Mean of empty slice'; warnings are errors here."""
    import warnings

    import numpy as np

    from snn4_ros.eval.inprocess import replay
    from snn4_ros.eval.metrics import compute_metrics
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import DEMO_MODEL, find_model

    net, card = checkpoint.load(find_model(DEMO_MODEL))
    tr = replay(bag, net, card=card)
    assert len(tr.dec_t) > 0
    tr.dec_synops = np.full(len(tr.dec_t), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics([tr])
    assert m["decisions"] == len(tr.dec_t)
    assert m["synops_per_decision_mean"] == 0.0          # nothing counted: 0, as documented


def test_the_readme_first_screen_shows_what_it_does():
    """The first screen: a picture made by tools/readme_figure.py (a real clip beside a
    synthetic one through the product's code), of a size a page loads quickly."""
    text = (ROOT / "README.md").read_text()
    first = "\n".join(text.splitlines()[:30])
    m = re.search(r"!\[[^\]]+\]\((docs/[^)]+\.png)\)", first)
    assert m, "no picture on the README's first screen"
    png = ROOT / m.group(1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < png.stat().st_size < 400_000, png.stat().st_size
    assert "tools/readme_figure.py" in first and (ROOT / "tools/readme_figure.py").exists()
    for words in ("real", "simulat", "cmd_vel"):
        assert words in first.lower(), words
    import json

    from PIL import Image

    from snn4_ros.models.zoo import default_model

    facts = json.loads(Image.open(png).text["Comment"])      # what the script counted
    redo = ("run .venv/bin/python tools/readme_figure.py and update the README's caption "
            "from what it prints")
    # each clip drawn with the model the product picks for that input
    for kind, want in (("real", default_model(facts["real"]["clip"])),
                       ("synthetic", default_model("synthetic"))):
        got = facts[kind]["model"]
        assert got == want, f"{png.name}: the {kind} clip shows {got}, the default is {want}: {redo}"
        assert f"`{got}`" in first, f"the caption does not name {got}: {redo}"


def test_record_synthetic_performs_the_classes_asked(tmp_path):
    from snn4_ros.events.recording import record_synthetic

    info = record_synthetic(tmp_path / "c.bag", gestures=3, gesture_s=0.2,
                            classes=["right_hand_wave", "hand_clap"])
    assert info["gestures"] == ["right_hand_wave", "hand_clap", "right_hand_wave"]
    rows = (tmp_path / "c.bag.labels.csv").read_text().split()[1:]
    assert [r.split(",")[2] for r in rows] == info["gestures"]


def test_one_spec_grammar_for_the_simulator():
    """synthetic:3 was a seed as a source and a clip count as a dataset. Now: named fields
    everywhere, the short form means the same fields in the same order, and a source (which
    has no clip count) takes seed= only; the help of each command says so."""
    import numpy as np

    from snn4_ros.events.sources import check_source, iter_source
    from snn4_ros.models.datasets import parse_dataset_spec

    assert parse_dataset_spec("synthetic:30:2") == parse_dataset_spec("synthetic:n=30,seed=2")
    assert parse_dataset_spec("synthetic:seed=2,n=30") == parse_dataset_spec("synthetic:30:2")
    assert str(parse_dataset_spec("synthetic:5", train=False)) == "synthetic:n=5,seed=1"
    assert parse_dataset_spec("synthetic-real:n=4").n == 4
    assert check_source("synthetic:seed=3") == "synthetic:seed=3"
    a = next(c for c in iter_source("synthetic:seed=3") if len(c.events))
    b = next(c for c in iter_source("synthetic", seed=3) if len(c.events))
    c = next(c for c in iter_source("synthetic:seed=4") if len(c.events))
    assert np.array_equal(a.events, b.events) and not np.array_equal(a.events, c.events)
    helps = {name: sub.format_help() for name, sub in
             next(a for a in build_parser()._actions if a.choices and "up" in a.choices)
             .choices.items()}
    assert "synthetic:n=N,seed=S" in helps["eval"] and "synthetic:n=N,seed=S" in helps["train"]
    assert "synthetic[:seed=S]" in helps["up"]
    readme = (ROOT / "README.md").read_text()
    assert "synthetic:seed=S" in readme and "synthetic:n=N,seed=S" in readme
