"""NIR export and import of the spiking backbone: the shipped models round-trip spike for spike
on real recordings (N-MNIST, DVS128), snnTorch loads our export and spikes the same, a graph
written by another tool imports against an independent reference of NIR's equations, and
what NIR cannot describe is refused with the reason."""

import json

import nir
import numpy as np
import pytest
import torch

from snn4_ros.app.cli import main
from snn4_ros.models import checkpoint, nir_io
from snn4_ros.models.datasets import nmnist_data
from snn4_ros.models.hybridnet import HybridNet, preset_config
from snn4_ros.models.loihi_tools import check_clips
from snn4_ros.models.zoo import find_model

AEDAT = "aedat4_dvs128/dvSave-2024_06_13_16_16_25.aedat4"


@pytest.fixture(scope="module")
def nmnist_model():
    return checkpoint.load(find_model("nmnist_1k"))[0]


@pytest.fixture(scope="module")
def nmnist_clip(shared_data, nmnist_model):
    d = nmnist_data(shared_data / "nmnist_train1k", nmnist_model.cfg, ids=[1, 2, 3])
    return d.frames.float().transpose(0, 1)          # [T, 3, 2, 34, 34], real digits


def _roundtrip(model, tmp_path, name="m"):
    return nir_io.import_graph(nir_io.read(nir_io.write(model, tmp_path / f"{name}.nir")))


def test_export_writes_the_backbone_with_exact_parameters(nmnist_model, tmp_path):
    g = nir_io.read(nir_io.write(nmnist_model, tmp_path / "n.nir", dt=1e-3))
    order = nir_io.chain(g)
    assert [type(g.nodes[n]).__name__ for n in order] == \
        ["Input", "Conv2d", "LIF", "Conv2d", "LIF", "Conv2d", "LIF", "Output"]
    assert g.metadata["dt"] == pytest.approx(1e-3) and g.metadata["bin_us"] == 30_000
    lif = g.nodes["lif0"]
    # tau = 2 bins: beta = 0.5 = 1 - dt / tau_nir, and r dt / tau = 1 (unit input gain)
    assert np.allclose(lif.tau, 2e-3) and np.allclose(lif.r * 1e-3 / lif.tau, 1.0)
    assert lif.tau.shape == tuple(nmnist_model.cfg.stage_shapes()[0])
    # the folded conv equals conv -> batch norm (inference) of the model
    layer = nmnist_model.backbone[1]
    x = (torch.rand(2, 16, 34, 34) > 0.7).double()
    conv = g.nodes["conv1"]
    got = torch.nn.functional.conv2d(x, torch.from_numpy(conv.weight), torch.from_numpy(conv.bias),
                                     stride=tuple(conv.stride), padding=tuple(conv.padding))
    ref = layer.double().synapse(x)
    layer.float()
    assert torch.allclose(got, ref, atol=1e-9)


def test_nmnist_model_roundtrips_spike_for_spike_on_real_digits(nmnist_model, nmnist_clip,
                                                                 tmp_path):
    imported = _roundtrip(nmnist_model, tmp_path)
    for dtype in (torch.float64, torch.float32):
        r = nir_io.compare_spikes(nmnist_model, imported, nmnist_clip, dtype=dtype)
        assert r["exact"], r
        assert all(layer["spikes"] > 1000 for layer in r["layers"]), r   # not a silent net


def test_gesture_model_roundtrips_on_a_real_dvs128_clip(shared_data, tmp_path):
    model = checkpoint.load(find_model("hybridnet_gesture_synth"))[0]
    (_, frames), = check_clips(model, [str(shared_data / AEDAT)], None)
    clip = frames.float().unsqueeze(1)
    assert clip.sum() > 100                           # real events in the window
    r = nir_io.compare_spikes(model, _roundtrip(model, tmp_path), clip)
    assert r["exact"] and sum(layer["spikes"] for layer in r["layers"]) > 100, r


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("neuron,kw", [("cuba", {"du": 0.3, "dv": 0.2, "bias": 0.05}),
                                       ("plif", {"tau": 3.0})])
def test_cuba_and_plif_backbones_roundtrip(neuron, kw, shared_data, tmp_path):
    torch.manual_seed(1)
    model = _randomise_bn(HybridNet(preset_config("hybridnet-nmnist", neuron=neuron,
                                                  neuron_kwargs=kw, channels=(8, 16, 16))))
    if neuron == "plif":
        model.backbone[0].neuron.w.data.fill_(0.7)      # a learned decay, not the initial one
    g = nir_io.export_graph(model)
    want = nir.CubaLIF if neuron == "cuba" else nir.LIF
    assert all(isinstance(g.nodes[f"lif{i}"], want) for i in range(3))
    d = nmnist_data(shared_data / "nmnist_train1k", model.cfg, ids=[4, 5])
    r = nir_io.compare_spikes(model, _roundtrip(model, tmp_path), d.frames.float().transpose(0, 1))
    assert r["exact"] and r["layers"][-1]["spikes"] > 0, r


def _nir_reference(graph, x_seq, dt):
    """NIR's equations stepped by forward Euler in numpy, independent of our modules."""
    order = [n for n in nir_io.chain(graph)
             if not isinstance(graph.nodes[n], (nir.Input, nir.Output))]
    state = {}
    outs = []
    for x in x_seq:
        h = x
        for n in order:
            node = graph.nodes[n]
            if isinstance(node, nir.SumPool2d):
                k = int(node.kernel_size[0])
                b, c, hh, ww = h.shape
                h = h.reshape(b, c, hh // k, k, ww // k, k).sum((3, 5))
            elif isinstance(node, nir.Flatten):
                h = h.reshape(h.shape[0], -1)
            elif isinstance(node, nir.Affine):
                h = h @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                h = h @ node.weight.T
            elif isinstance(node, nir.CubaLIF):
                i_, v = state.get(n, (np.zeros_like(h), np.zeros_like(h)))
                i_ = i_ + dt / node.tau_syn * (-i_ + node.w_in * h)
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i_)
                s = (v > node.v_threshold).astype(np.float64)
                v = np.where(s > 0, node.v_reset, v)
                state[n] = (i_, v)
                h = s
            elif isinstance(node, nir.LIF):
                v = state.get(n, np.zeros_like(h))
                v = v + dt / node.tau * (node.v_leak - v + node.r * h)
                s = (v > node.v_threshold).astype(np.float64)
                state[n] = np.where(s > 0, node.v_reset, v)
                h = s
        outs.append(h)
    return np.stack(outs)


def test_imports_a_foreign_graph_against_nir_equations():
    """A graph as another framework writes it (per-neuron arrays, r != tau/dt, v_leak, a
    sum-pooling, flatten, affine, linear), imported and compared with NIR's own equations."""
    rng = np.random.default_rng(0)
    dt = 1e-3
    nodes = {
        "in": nir.Input({"input": np.array([2, 8, 8])}),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([2, 4, 4])}, start_dim=1),
        "aff": nir.Affine(weight=rng.normal(0, 0.5, (20, 32)), bias=rng.normal(0, 0.1, 20)),
        "cuba": nir.CubaLIF(tau_syn=np.full(20, 4e-3), tau_mem=np.full(20, 5e-3),
                            r=np.full(20, 3.0), v_leak=np.full(20, 0.1),
                            v_threshold=np.full(20, 0.6), w_in=np.full(20, 2.0)),
        "lin": nir.Linear(weight=rng.normal(0, 0.8, (6, 20))),
        "lif": nir.LIF(tau=np.full(6, 2.5e-3), r=np.full(6, 1.5), v_leak=np.zeros(6),
                       v_threshold=np.full(6, 0.5)),
        "out": nir.Output({"output": np.array([6])}),
    }
    edges = [("in", "pool"), ("pool", "flat"), ("flat", "aff"), ("aff", "cuba"),
             ("cuba", "lin"), ("lin", "lif"), ("lif", "out")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    x = (rng.random((30, 3, 2, 8, 8)) < 0.3).astype(np.float64)
    ref = _nir_reference(graph, x, dt)
    net = nir_io.import_graph(graph, dt=dt, dtype=torch.float64)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert ref.sum() > 10 and ref.sum() < ref.size       # the output spikes, not saturated
    np.testing.assert_array_equal(got, ref)
    state = None                                         # the explicit-state step is the same
    for t in range(5):
        y, state = net.step(torch.from_numpy(x[t]), state)
        np.testing.assert_array_equal(y.detach().numpy(), ref[t])


def test_snntorch_loads_our_export_and_spikes_the_same(nmnist_model, nmnist_clip, tmp_path):
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    graph = nir.read(str(nir_io.write(nmnist_model, tmp_path / "n.nir")))
    net = import_from_nir(graph)
    ours = nir_io.backbone_spikes(nmnist_model, nmnist_clip)[-1]
    snn_utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(nmnist_clip[t])[0] for t in range(nmnist_clip.shape[0])])
    assert ours.sum() > 1000
    assert torch.equal(theirs, ours)


def test_what_nir_cannot_hold_is_refused_with_the_reason(tmp_path):
    cases = [(dict(neuron_kwargs={"tau": 2.0, "reset": "soft"}), "soft"),
             (dict(neuron="alif", neuron_kwargs={}), "ALIF"),
             (dict(sdsa=True), "SDSA")]
    for over, word in cases:
        net = HybridNet(preset_config("hybridnet-nmnist", **over)).eval()
        with pytest.raises(nir_io.NIRError, match=word):
            nir_io.export_graph(net)
    loihi = HybridNet(preset_config("hybridnet-loihi", channels=(4, 8, 8), head_hidden=8))
    with pytest.raises(nir_io.NIRError, match="snn4 loihi export"):
        nir_io.export_graph(loihi)
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(nir_io.NIRError, match="not a readable NIR file"):
        nir_io.read(bad)
    branch = nir.NIRGraph(nodes={"a": nir.Input({"input": np.array([2])}),
                                 "b": nir.Linear(weight=np.eye(2)),
                                 "c": nir.Linear(weight=np.eye(2)),
                                 "o": nir.Output({"output": np.array([2])})},
                          edges=[("a", "b"), ("a", "c"), ("b", "o"), ("c", "o")],
                          type_check=False)
    with pytest.raises(nir_io.NIRError, match="branches"):
        nir_io.import_graph(branch)


def test_export_cli_checks_real_recordings(shared_data, tmp_path, capsys):
    out = tmp_path / "nmnist.nir"
    rc = main(["export", "--model", "nmnist_1k", "--nir", str(out), "--json", "--check",
               str(shared_data / "nmnist_train1k" / "7.bs2"), str(shared_data / AEDAT)])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and out.exists() and res["nir"] == str(out)
    assert [c["exact"] for c in res["checks"]] == [True, True]
    assert all(c["events"] > 0 for c in res["checks"])
    rc = main(["export", "--model", "nmnist_1k", "--nir", str(tmp_path / "x.nir"),
               "--check", str(tmp_path / "missing.aedat4")])
    assert rc == 2 and "no such recording" in capsys.readouterr().err
    assert not (tmp_path / "x.nir").exists()              # nothing written on bad input
