"""``snn4 demo`` (the pipeline in process, live statistics) and ``snn4 up`` (the ROS 2
graph -- the event source in its own process by default -- optionally with the dashboard)."""

from __future__ import annotations

import json
import os
import sys

from ..errors import positive_float


def cmd_demo(args) -> int:
    from ..demo import run_demo

    return run_demo(duration_s=args.duration, seed=args.seed, encoding=args.encoding,
                    model=args.model)


def cmd_up(args) -> int:
    from ...ros.description import check_overrides, graph_topology, load_graph
    from ...ros.parameters import parse_params

    # the graph, the params file and every --param, checked before rclpy, torch or a model
    nodes = load_graph(args.graph)
    overrides: dict = {}
    if args.params_file:             # ros__parameters YAML (ros2 param dump, snn4 params)
        from ...ros.description import load_ros_parameters
        overrides = check_overrides(nodes, load_ros_parameters(args.params_file),
                                    args.params_file)
    raw = parse_params(args.param or [])
    graph_opts = raw.pop("graph", {})         # graph.topology=single|source_process
    for node, values in check_overrides(nodes, raw).items():
        overrides.setdefault(node, {}).update(values)
    topology = graph_opts.get("topology") or graph_topology(args.graph)
    if topology not in ("single", "source_process") or set(graph_opts) - {"topology"}:
        print(f"snn4 up: --param graph.topology wants single or source_process, got "
              f"{graph_opts}", file=sys.stderr)
        return 2
    if graph_opts:
        overrides["graph"] = graph_opts
    source = (args.source or overrides.get("event_source", {}).get("source")
              or (nodes.get("event_source") or {}).get("parameters", {}).get("source"))
    if source and "event_source" in nodes:
        from ...events.sources import check_source
        check_source(str(source))          # a wrong spec or path: one line, before rclpy
    from ...ros.graph import run_graph
    state = {"bins": 0, "events": 0}

    def report(inf, ctrl, src):
        st = inf.decoder.stats
        cls, conf, pos = inf.last or ("-", 0.0, None)
        c = ctrl.last
        line = (f"{st.events - state['events']:8,d} ev/s {inf.bins - state['bins']:3d} bins  "
                f"snn={cls:<15} p={conf:.2f}  "
                + (f"target=({pos[0]:5.1f},{pos[1]:5.1f})  " if pos else "")
                + (f"cmd_vel=({c.linear:+.2f} m/s, {c.angular:+.2f} rad/s) [{c.state}"
                   f"{' ' + c.action if c.action else ''}]" if c else "cmd_vel=-"))
        state["bins"], state["events"] = inf.bins, st.events
        print(line, flush=True)

    if args.dashboard:
        from ...dashboard import DashboardSecurityError, check_bind
        from ...ros.dashboard_node import read_token

        host, _, port = args.dashboard.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            print(f"snn4 up: --dashboard wants HOST:PORT, got {args.dashboard!r}",
                  file=sys.stderr)
            return 2
        dash = overrides.setdefault("dashboard", {})
        dash.update(host=host, port=int(port))
        if args.dashboard_token_file:
            dash["token_file"] = os.path.abspath(args.dashboard_token_file)
        try:
            check_bind(host, read_token(dash.get("token_file", "")))
        except (DashboardSecurityError, OSError, ValueError) as exc:
            print(f"snn4 up: {exc}", file=sys.stderr)
            return 2
        print(f"snn4 up: dashboard on http://{host}:{port}/ (its own process)", flush=True)
    ns = args.namespace.strip("/")
    print(f"snn4 up: event_source -> snn4_inference -> gesture_controller (topology "
          f"{topology}, graph {args.graph}, namespace /{ns}; Ctrl-C to stop)", flush=True)
    if args.simulated_motion:
        print(f"snn4 up: --simulated-motion: simulated or recorded input may move a robot "
              f"(/{ns}/cmd_vel)", flush=True)
    elif not (args.source or "").startswith("camera"):
        print("snn4 up: simulated or recorded input: cmd_vel stays zero (add "
              "--simulated-motion to let it move a robot)", flush=True)
    from ...ros.lava_env import LavaEnvMissing
    try:
        summary = run_graph(args.source, args.duration, overrides, graph=args.graph,
                            report=report if not args.json else None,
                            dashboard=bool(args.dashboard), namespace=ns,
                            simulated_motion=args.simulated_motion)
    except (LavaEnvMissing, FileNotFoundError) as exc:
        print(f"snn4 up: {exc}", file=sys.stderr)
        return 2
    rtf = summary.get("real_time_factor")
    if rtf is not None and rtf < 0.99:
        print(f"snn4 up: WARNING behind real time: {rtf:.2f}x ({summary['bins']} of "
              f"{summary['bins_expected']} bins of the wall clock time reached the network; "
              f"the source ran at {summary['source_real_time_factor']:.2f}x)", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 1 if summary.get("source_error") else 0


def parser_demo(sub) -> None:
    q = sub.add_parser("demo", help="run the pipeline on the synthetic DVS with live statistics")
    q.add_argument("--duration", type=positive_float, default=None,
                   help="seconds (default: until Ctrl-C)")
    q.add_argument("--seed", type=int, default=0, help="seeds the synthetic scene")
    q.add_argument("--encoding", default="evt3", choices=["evt3", "libcaer_cmp", "libcaer", "mono"],
                   help="EventPacket encoding on the way through the pipeline")
    q.add_argument("--model", default="hybridnet_gesture_synth",
                   help="shipped model name or checkpoint path")
    q.set_defaults(fn=cmd_demo)


def parser_up(sub) -> None:
    q = sub.add_parser("up", help="run the ROS 2 perception graph (the event source in its own "
                       "process; --param graph.topology=single for one process)")
    q.add_argument("--source", help="event source: synthetic[:seed=S], camera[:SERIAL] or "
                   "a recording PATH (snn4 sources lists them; default: the graph YAML's)")
    q.add_argument("--duration", type=positive_float,
                   help="seconds, then stop (default: until Ctrl-C)")
    q.add_argument("--graph", default="perception", help="config/<graph>.yaml or a path")
    q.add_argument("--params-file", metavar="YAML",
                   help="ros__parameters file applied on top of the graph's (ros2 param dump "
                        "or snn4 params output)")
    q.add_argument("--param", action="append", metavar="NODE.NAME=VALUE",
                   help="override a node parameter, checked against what the node declares "
                        "(repeatable, after --params-file; e.g. "
                        "gesture_controller.max_linear=0.2)")
    q.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    q.add_argument("--dashboard", metavar="HOST:PORT",
                   help="serve the health/metrics endpoints and the live page (e.g. "
                        "127.0.0.1:8080; another address needs a token)")
    q.add_argument("--dashboard-token-file", metavar="FILE",
                   help="bearer token for the e-stop (else SNN4_DASHBOARD_TOKEN)")
    q.add_argument("--namespace", default="snn4",
                   help="namespace of the nodes and topics (as ros2 launch namespace:=)")
    q.add_argument("--simulated-motion", action="store_true",
                   help="let a synthetic or recorded source move a robot (the second switch; "
                        "without it cmd_vel stays zero)")
    q.set_defaults(fn=cmd_up)


def cmd_params(args) -> int:
    import yaml

    from ...ros.description import load_graph, ros_parameters

    try:
        nodes = load_graph(args.graph)
    except (FileNotFoundError, ValueError) as exc:
        print(f"snn4 params: {exc}", file=sys.stderr)
        return 2
    print(f"# snn4 params --graph {args.graph} --namespace {args.namespace!r}: the parameters "
          "of config/<graph>.yaml as ros__parameters")
    print(yaml.safe_dump(ros_parameters(nodes, args.namespace), sort_keys=False), end="")
    return 0


def parser_params(sub) -> None:
    q = sub.add_parser("params", help="the graph's parameters as a ros__parameters YAML "
                       "(for --params-file, ros2 launch ... params_file:=, ros2 param load)")
    q.add_argument("--graph", default="perception", help="config/<graph>.yaml or a path")
    q.add_argument("--namespace", default="snn4",
                   help="namespace of the node names ('' for the root; '**' for any)")
    q.set_defaults(fn=cmd_params)
