"""The Loihi 2 path: the fixed-point emulation against an independent integer reference,
bit-exactness against real Lava (Python 3.10 venv), the Lava bridge node in its own process
against the torch fixed-point backend, and clear errors."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import missing

from snn4_ros.models import checkpoint
from snn4_ros.models.hybridnet import HybridNet, StreamingRunner, preset_config
from snn4_ros.models.loihi import (LoihiCompatibilityError, LoihiConv, check_loihi, export_lava,
                                   quantize_model, write_check_file)

ROOT = Path(__file__).resolve().parents[1]
LAVA_PY = ROOT / "hw" / ".lava-venv" / "bin" / "python"


@pytest.fixture(scope="module")
def lava_python():
    if not LAVA_PY.exists():
        missing(f"{LAVA_PY} missing: `make lava-env` creates it (make test does)")
    return LAVA_PY


def tiny_loihi(seed=0):
    torch.manual_seed(seed)
    net = HybridNet(preset_config("hybridnet-loihi", channels=(4, 8, 8), head_hidden=16))
    net.eval()
    quantize_model(net)
    return net


def _reference_lif(a_int, du, dv, vth):
    """Lava's PyLifModelBitAcc step by step, in numpy int64 (from the measured notes)."""
    T = a_int.shape[0]
    u = np.zeros(a_int.shape[1:], np.int64)
    v = np.zeros_like(u)
    out = []
    for t in range(T):
        p = u * (4096 - (du + 1))
        u = np.sign(p) * (np.abs(p) >> 12)
        u = u + (a_int[t].astype(np.int64) << 6)
        u = np.where(u > 2 ** 23, u - 2 ** 24, np.where(u <= -2 ** 23, u + 2 ** 24, u))
        q = v * (4096 - dv)
        v = np.clip(np.sign(q) * (np.abs(q) >> 12) + u, -(2 ** 23 - 1), 2 ** 23 - 1)
        s = v > (vth << 6)
        v = np.where(s, 0, v)
        out.append(s)
    return np.stack(out)


@pytest.mark.parametrize("du,dv", [(2047, 1024), (0, 0), (4095, 4095), (100, 3000)])
def test_fixed_point_neuron_equals_integer_reference(du, dv):
    torch.manual_seed(1)
    layer = LoihiConv(2, 3, 3, 1, du=du, dv=dv)
    layer.eval()
    layer.quantize(scale=300.0)                      # vth 300: some weights clip at +-256
    x = (torch.rand(20, 1, 2, 6, 6) < 0.4).float()
    with torch.no_grad():
        s = layer(x).numpy().astype(bool)[:, 0]
        w = layer.weight_int().round().numpy()
    # the reference: integer conv of last step's input, then the LIF
    xi = x.numpy()[:, 0].astype(np.int64)
    a = torch.nn.functional.conv2d(torch.from_numpy(xi).double(), torch.from_numpy(w).double(),
                                   padding=1).numpy().astype(np.int64)
    a = np.concatenate([np.zeros_like(a[:1]), a[:-1]])            # one step of delay
    ref = _reference_lif(a, du, dv, layer.vth)
    assert np.array_equal(s, ref) and ref.sum() > 10
    assert set(np.unique(w)) <= set(range(-256, 255, 2))


def test_float_to_fixed_is_close_and_streaming_equals_batch():
    torch.manual_seed(0)
    net = HybridNet(preset_config("hybridnet-loihi", channels=(4, 8, 8), head_hidden=16)).eval()
    x = (torch.rand(12, 2, 2, 64, 64) < 0.05).float()
    with torch.no_grad():
        f = net(x)
        quantize_model(net)
        q = net(x)
        r = StreamingRunner(net)
        outs = [r.step(x[t]) for t in range(12)]
    rate_f = [float(c.sum()) for c in f.spikes]
    rate_q = [float(c.sum()) for c in q.spikes]
    assert all(abs(a - b) <= 0.05 * max(a, 1) for a, b in zip(rate_f, rate_q))
    assert torch.equal(outs[-1].logits, q.logits)
    # QAT: gradients flow through the integer forward pass
    net.train()
    out = net(x)
    out.logits.sum().backward()
    assert net.backbone[0].conv.weight.grad.abs().sum() > 0


def test_not_loihi_compatible_lists_why(tmp_path, capsys):
    net = HybridNet(preset_config("hybridnet-s-sdsa"))
    with pytest.raises(LoihiCompatibilityError) as exc:
        check_loihi(net)
    msg = str(exc.value)
    assert "backbone.0: SpikingConv with LIF neurons and batch norm" in msg
    assert "backbone.2" in msg and "SDSA" in msg
    with pytest.raises(LoihiCompatibilityError, match="12-bit"):
        LoihiConv(2, 2, du=5000)
    loihi = tiny_loihi()
    loihi.backbone[1].conv.weight.data *= 4                   # beyond 8 bits after scaling
    with pytest.raises(LoihiCompatibilityError, match="backbone.1: .* of the weights exceed"):
        check_loihi(loihi)
    loihi = tiny_loihi()
    loihi.backbone[2].scale.fill_(3e5)
    with pytest.raises(LoihiCompatibilityError, match="backbone.2: threshold vth 300000"):
        check_loihi(loihi)
    # the CLI says the same for a checkpoint
    checkpoint.save(HybridNet(preset_config("hybridnet-xs")), tmp_path / "xs", {})
    from snn4_ros.app.cli import main
    assert main(["loihi", "quantize", "--model", str(tmp_path / "xs"), "--out",
                 str(tmp_path / "q"), "--qat-epochs", "0"]) == 2
    assert "does not map onto Loihi 2" in capsys.readouterr().err


def test_missing_lava_venv_says_how_to_create_it(monkeypatch, tmp_path):
    from snn4_ros.ros import lava_env

    monkeypatch.setattr(lava_env, "ROOT", tmp_path)
    monkeypatch.setattr(lava_env, "_hw_dirs", lambda: [tmp_path / "hw"])   # no install's record
    monkeypatch.delenv("SNN4_LAVA_PYTHON", raising=False)
    with pytest.raises(lava_env.LavaEnvMissing, match="make lava-env"):
        lava_env.lava_python()


def test_lava_runs_the_emulation_bit_exact(tmp_path, lava_python):
    """Real Lava (fixed_pt, Sparse and Conv processes) against the torch emulation."""
    net = tiny_loihi()
    base = tmp_path / "tiny"
    checkpoint.save(net, base, {})
    export_lava(net, base)
    torch.manual_seed(2)
    clips = [(f"rand{i}", (torch.rand(10, 2, 64, 64) < 0.1).to(torch.uint8) * 2)
             for i in range(2)]
    write_check_file(net, clips, tmp_path / "check.npz")
    for conn in ("sparse", "conv"):
        p = subprocess.run([str(lava_python), str(ROOT / "hw" / "lava_run.py"), "check",
                            str(tmp_path / "check.npz"), str(base), "--connection", conn],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.strip().splitlines()[-1] == "bit-exact: 2/2"


@pytest.mark.timeout(240)
def test_bridge_node_gives_the_torch_fixed_point_decisions(tmp_path, lava_python):
    """Two processes, two Pythons: the inference node (3.11, backend lava) and the Lava
    bridge node (3.10) over real DDS; the decisions equal the torch fixed-point backend's."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from vision_msgs.msg import Classification

    from snn4_ros.events import PacketEncoder
    from snn4_ros.events.synthetic import GestureSimulator
    from snn4_ros.ros.common import EVENTS_PUB_QOS, EVENTS_TOPIC, GESTURE_TOPIC, packet_to_msg
    from snn4_ros.ros.inference_node import InferenceNode
    from snn4_ros.ros.lava_env import bridge_command

    net = tiny_loihi()
    base = tmp_path / "tiny"
    checkpoint.save(net, base, {})
    export_lava(net, base)
    sim = GestureSimulator(seed=4)
    enc = PacketEncoder("evt3", 128, 128)
    stream = sim.stream(gesture_s=0.5)
    packets = [packet_to_msg(enc.encode(next(stream)[0], stamp_ns=(i + 1) * 2_000_000))
               for i in range(300)]                                      # 0.6 s, 15 bins
    # the session's own domain (conftest claims it under a lock): 90 + pid % 10 could be
    # another session's, and its nodes would answer this bridge
    domain = int(os.environ["SNN4_TEST_DOMAIN_ID"])
    env_args, env = bridge_command(base)
    env["ROS_DOMAIN_ID"] = str(domain)
    bridge = subprocess.Popen(env_args, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    results = {}
    try:
        for backend in ("lava", "torch"):
            ctx = rclpy.Context()
            rclpy.init(context=ctx, domain_id=domain)
            ex = SingleThreadedExecutor(context=ctx)
            inf = InferenceNode(context=ctx, parameter_overrides=[
                Parameter("model", value=str(base)), Parameter("backend", value=backend),
                Parameter("lava_timeout_s", value=10.0),
                Parameter("deadline_s", value=0.0)])        # every bin, to compare them
            feeder = rclpy.create_node("feeder", context=ctx)
            pub = feeder.create_publisher(type(packets[0]), EVENTS_TOPIC, EVENTS_PUB_QOS)
            got = []
            feeder.create_subscription(Classification, GESTURE_TOPIC, lambda m: got.append(
                {r.class_id: r.score for r in m.results}), 100)
            for n in (inf, feeder):
                ex.add_node(n)
            t_end = time.monotonic() + 60
            ready = (lambda: inf.lava.pub.get_subscription_count() > 0) if backend == "lava" \
                else (lambda: True)
            while not (ready() and pub.get_subscription_count() > 0):
                assert bridge.poll() is None, bridge.stdout.read()
                assert time.monotonic() < t_end, "bridge never subscribed"
                ex.spin_once(timeout_sec=0.1)
            for k, m in enumerate(packets):
                pub.publish(m)
                while inf.processed < k + 1 - 8:
                    ex.spin_once(timeout_sec=0.01)
            t_end = time.monotonic() + 30
            while len(got) < inf.bins or inf.processed < len(packets):
                ex.spin_once(timeout_sec=0.05)
                assert time.monotonic() < t_end, f"{backend}: {len(got)} decisions"
            results[backend] = (list(got), inf.errors, inf.last_exception)
            ex.shutdown()
            inf.destroy_node()
            feeder.destroy_node()
            rclpy.shutdown(context=ctx)
    finally:
        bridge.terminate()
        try:
            out, _ = bridge.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            bridge.kill()
            out = ""
    lava, torch_ = results["lava"], results["torch"]
    assert lava[1] == 0, lava[2]
    assert len(lava[0]) == len(torch_[0]) >= 12
    for a, b in zip(lava[0], torch_[0]):
        assert max(a, key=a.get) == max(b, key=b.get)
        assert all(abs(a[k] - b[k]) < 1e-6 for k in a)
    assert "Lava's bit-accurate CPU simulation" in out or "lava-loihi not installed" in out
