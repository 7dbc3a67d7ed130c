"""Parameters that cannot be mistyped: the declared-parameter table (ros/parameters.py) is
exactly what the nodes declare, and unknown names or bad values in --param, a graph YAML or
a params file are one-line errors with a "did you mean", before anything starts."""

import ast
from pathlib import Path

import pytest
import rclpy
from rclpy.parameter import Parameter

from snn4_ros.ros.description import check_overrides, load_graph, node_parameters
from snn4_ros.ros.parameters import (NODE_PARAMETERS, ParameterError, parameters_of,
                                     parse_params)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ctx():
    c = rclpy.context.Context()
    rclpy.init(context=c)
    yield c
    rclpy.shutdown(context=c)


def _declared(node) -> dict:
    """name -> (python type, default, range) as the running node declared it."""
    from rcl_interfaces.msg import ParameterType as T

    types = {T.PARAMETER_BOOL: bool, T.PARAMETER_INTEGER: int, T.PARAMETER_DOUBLE: float,
             T.PARAMETER_STRING: str}
    out = {}
    for name in node._parameters:
        d = node.describe_parameter(name)
        rng = None
        if d.integer_range:
            rng = (d.integer_range[0].from_value, d.integer_range[0].to_value)
        elif d.floating_point_range:
            rng = (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value)
        out[name] = (types.get(d.type), node.get_parameter(name).value, rng)
    return out


def _table(executable: str) -> dict:
    return {n: (p.type, p.default, None if p.range is None else tuple(map(p.type, p.range)))
            for n, p in parameters_of(executable).items()}


def _make(executable, ctx):
    from snn4_ros.ros.cmd_vel_guard_node import CmdVelGuardNode
    from snn4_ros.ros.controller_node import ControllerNode
    from snn4_ros.ros.dashboard_node import DashboardNode
    from snn4_ros.ros.event_source_node import EventSourceNode
    from snn4_ros.ros.inference_node import InferenceNode

    if executable == "dashboard":       # port 0: any free port; nice 0: not this process
        return DashboardNode(context=ctx, parameter_overrides=[
            Parameter("port", value=0), Parameter("nice", value=0)])
    cls = {"event_source": EventSourceNode, "snn4_inference": InferenceNode,
           "gesture_controller": ControllerNode, "cmd_vel_guard": CmdVelGuardNode}[executable]
    return cls(context=ctx)


@pytest.mark.parametrize("executable", ["event_source", "snn4_inference", "gesture_controller",
                                        "dashboard", "cmd_vel_guard"])
def test_the_table_is_what_each_node_declares(executable, ctx):
    node = _make(executable, ctx)
    try:
        declared = _declared(node)
    finally:
        node.destroy_node()
    table = _table(executable)
    for name, spec in declared.items():
        assert name in table, (f"{executable} declares {name!r}, which is not in "
                               f"snn4_ros/ros/parameters.py NODE_PARAMETERS[{executable!r}]")
        want = table[name]
        if executable == "dashboard" and name in ("port", "nice"):
            want = (want[0], spec[1], want[2])          # overridden above
        assert spec == want, f"{executable}.{name}: node declares {spec}, the table says {want}"
    # declared only with backend:=lava (the Lava bridge must be running)
    conditional = {"lava_timeout_s"} if executable == "snn4_inference" else set()
    assert set(table) - set(declared) == conditional, (
        f"in the table but not declared by {executable}: {set(table) - set(declared)}")


def test_the_table_knows_the_lava_bridge_parameters():
    """The bridge runs in the Lava venv (Python 3.10); its declarations are read from source."""
    tree = ast.parse((ROOT / "hw/snn4_lava/bridge.py").read_text())
    names = {c.args[0].value for c in ast.walk(tree) if isinstance(c, ast.Call)
             and getattr(c.func, "attr", "") == "declare_parameter"}
    assert names == set(NODE_PARAMETERS["lava_bridge"])


@pytest.mark.parametrize("item,message", [
    ("nonode.x=1", "--param: no node 'nonode' in the graph (nodes: event_source, "
                   "snn4_inference, gesture_controller, dashboard)"),
    ("gesture_contoller.max_linear=0.2", "no node 'gesture_contoller' in the graph; "
                                         "did you mean 'gesture_controller'?"),
    ("event_source.nonsense=3", "event_source has no parameter 'nonsense' (event_source's "
                                "parameters: source, encoding,"),
    ("gesture_controller.max_linar=0.2", "gesture_controller has no parameter 'max_linar'; "
                                         "did you mean 'max_linear'?"),
    ("event_source.max_linear=0.2", "event_source has no parameter 'max_linear'; "
                                    "gesture_controller has it"),
    ("gesture_controller.max_linear=fast", "--param gesture_controller.max_linear: wants a "
                                           "number in [0.0, 100.0], got 'fast'"),
    ("gesture_controller.max_linear=500", "wants a number in [0.0, 100.0], got 500.0"),
    ("gesture_controller.debounce=0.5", "wants an integer in [1, 100], got 0.5"),
    ("event_source.encoding=evt4", "wants one of evt3, libcaer_cmp, libcaer, mono, got 'evt4'"),
    ("event_source.realtime=maybe", "wants true or false, got 'maybe'"),
    ("gesture_controller.max_linear", "--param wants NODE.NAME=VALUE"),
])
def test_param_mistakes_are_one_line_errors(item, message):
    nodes = load_graph("perception")
    with pytest.raises(ParameterError) as e:
        check_overrides(nodes, parse_params([item]))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_good_params_are_converted_to_their_types():
    nodes = load_graph("perception")
    out = node_parameters(nodes, parse_params([
        "gesture_controller.max_linear=1", "event_source.realtime=false",
        "event_source.frame_id=7", "snn4_inference.model=nmnist_1k"]))
    assert out["gesture_controller"]["max_linear"] == 1.0
    assert isinstance(out["gesture_controller"]["max_linear"], float)
    assert out["event_source"]["realtime"] is False
    assert out["event_source"]["frame_id"] == "7"
    assert out["gesture_controller"]["debounce"] == 3          # the YAML's, untouched


def test_lava_bridge_parameters_only_in_the_graph_that_has_it():
    with pytest.raises(ParameterError, match="no node 'lava_bridge'"):
        check_overrides(load_graph("perception"), {"lava_bridge": {"board_host": "x"}})
    assert check_overrides(load_graph("loihi"), {"lava_bridge": {"board_host": "x"}})


@pytest.mark.parametrize("body,message", [
    ("nodes:\n  gesture_controller:\n    executable: gesture_controller\n"
     "    parameters:\n      max_linar: 0.3\n", "did you mean 'max_linear'?"),
    ("nodes:\n  gesture_controller:\n    executable: gesture_controller\n"
     "    parameters:\n      max_linear: fast\n", "gesture_controller.max_linear: wants a number"),
    ("nodes:\n  x:\n    executable: teleop\n", "node 'x' runs 'teleop', which is not one of"),
    ("nodes:\n  x:\n    parameters: {}\n", "node 'x' has no executable"),
    ("nodes: [1, 2\n", "not valid YAML"),
    ("other: 1\n", "no 'nodes' mapping"),
])
def test_a_graph_yaml_with_a_mistake_is_refused_by_name(tmp_path, body, message):
    p = tmp_path / "g.yaml"
    p.write_text(body)
    with pytest.raises(ParameterError) as e:
        load_graph(str(p))
    assert message in str(e.value) and str(p) in str(e.value)


def test_the_shipped_graphs_pass_their_own_check():
    for g in ("perception", "loihi"):
        nodes = load_graph(g)
        assert nodes["gesture_controller"]["parameters"]["max_linear"] == 0.3
