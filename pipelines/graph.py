"""A ``PipelineJob`` as a plain graph of nodes, and a node's command with its ports filled in.

``graph_from_job`` is the one place that reads azure-ai-ml's job object; everything after it
works on ``Node`` values: which component, which inputs (a literal, a pipeline parameter or
another node's output), which outputs, and the command template. ``render_command`` turns a
template and port values into an argument list, as AML does on its compute.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.components import READS_TAG, WRITES_TAG, command_template, table_patterns

_PARENT_INPUT = re.compile(r"^\$\{\{\s*parent\.inputs\.(\w+)\s*\}\}$")
_NODE_OUTPUT = re.compile(r"^\$\{\{\s*parent\.jobs\.(\w+)\.outputs\.(\w+)\s*\}\}$")
_PORT = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")
_OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)


@dataclass(frozen=True)
class ParentInput:
    """A node input bound to a pipeline parameter."""

    name: str


@dataclass(frozen=True)
class NodeOutput:
    """A node input bound to another node's output."""

    node: str
    port: str


@dataclass
class Node:
    """One step of the graph, independent of azure-ai-ml."""

    name: str
    component: str
    version: str
    kind: str  # "command" | "spark"
    template: str
    code_dir: Path
    deterministic: bool
    inputs: dict[str, Any]  # port -> literal | ParentInput | NodeOutput
    input_specs: dict[str, dict[str, Any]]
    outputs: list[str]
    reads: list[str] | None  # declared lake tables read (None: undeclared, i.e. any)
    writes: list[str]
    spec_text: str = ""  # the component's own definition, for the reuse key

    @property
    def upstream(self) -> set[str]:
        return {v.node for v in self.inputs.values() if isinstance(v, NodeOutput)}


@dataclass
class Graph:
    """Nodes in a topological order (declaration order among independent nodes) and parameter values."""

    name: str
    nodes: dict[str, Node]
    parameters: dict[str, Any] = field(default_factory=dict)

    def downstream_of(self, name: str) -> list[str]:
        """``name`` and every node that depends on it, directly or not, in run order."""
        if name not in self.nodes:
            raise ValueError(f"unknown node {name!r}; pipeline {self.name!r} has {', '.join(self.nodes)}")
        reached = {name}
        for node in self.nodes.values():
            if node.upstream & reached:
                reached.add(node.name)
        return [n for n in self.nodes if n in reached]


def _binding(value: Any) -> Any:
    if isinstance(value, dict) and set(value) <= {"path", "mode", "type"} and "path" in value:
        value = value["path"]
    if isinstance(value, str):
        if m := _PARENT_INPUT.match(value):
            return ParentInput(m.group(1))
        if m := _NODE_OUTPUT.match(value):
            return NodeOutput(m.group(1), m.group(2))
    return value


def _parameter_value(pipeline_input: Any) -> Any:
    data = getattr(pipeline_input, "_data", pipeline_input)  # azure-ai-ml keeps the bound value here
    path = getattr(data, "path", None) if not isinstance(data, (str, int, float, bool)) else None
    return path if path is not None else data


def _code_dir(component: Any) -> Path:
    """The component's code folder: where its command runs (the repository root for ours)."""
    base = Path(str(component.base_path))
    if not component.code:
        return base
    code = Path(str(component.code))
    return (code if code.is_absolute() else base / code).resolve()


def graph_from_job(job: Any) -> Graph:
    """The job's nodes in run order; ValueError naming a node whose inputs form a cycle or dangle."""
    as_dict = job._to_dict()  # the job's YAML form: bindings as ${{...}} strings
    nodes: dict[str, Node] = {}
    for name, entity in job.jobs.items():
        component = entity.component
        spec = as_dict["jobs"][name]
        comp_dict = spec.get("component") if isinstance(spec.get("component"), dict) else component._to_dict()
        if not hasattr(component, "type"):
            raise ValueError(f"node {name}: component {component!r} is not loaded; only local components run")
        input_specs = {k: dict(v) for k, v in (comp_dict.get("inputs") or {}).items()}
        reads_declared = READS_TAG in (component.tags or {})
        nodes[name] = Node(
            name=name,
            component=component.name,
            version=str(component.version),
            kind=component.type,
            template=command_template(component),
            code_dir=_code_dir(component),
            deterministic=bool(component.is_deterministic),
            inputs={k: _binding(v) for k, v in (spec.get("inputs") or {}).items()},
            input_specs=input_specs,
            outputs=list((comp_dict.get("outputs") or {}).keys()),
            reads=table_patterns(component, READS_TAG) if reads_declared else None,
            writes=table_patterns(component, WRITES_TAG),
            spec_text=repr(sorted((k, repr(v)) for k, v in comp_dict.items() if k != "code")),
        )
    for node in nodes.values():
        for port, value in node.inputs.items():
            if isinstance(value, NodeOutput) and (value.node not in nodes or value.port not in nodes[value.node].outputs):
                raise ValueError(f"node {node.name}: input {port} is bound to missing output {value.node}.{value.port}")
    parameters = {k: _parameter_value(v) for k, v in job.inputs.items()}
    return Graph(name=str(job.name or job.display_name), nodes=_topological(nodes), parameters=parameters)


def _topological(nodes: dict[str, Node]) -> dict[str, Node]:
    ordered: dict[str, Node] = {}
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if nodes[n].upstream <= set(ordered)]
        if not ready:
            raise ValueError(f"nodes {', '.join(pending)} depend on each other in a cycle")
        for n in ready:
            ordered[n] = nodes[n]
        pending = [n for n in pending if n not in ordered]
    return ordered


def coerce_literal(node: str, port: str, spec: dict[str, Any], value: Any) -> Any:
    """The value as its port's type says (YAML defaults arrive as text); ValueError naming node and port."""
    kind = spec.get("type")
    if value is None or not isinstance(value, str) or kind not in ("integer", "number", "boolean"):
        return value
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise ValueError(f"node {node}: input {port}={value!r} is not a{'n integer' if kind == 'integer' else ' number'}") from None
    if value.lower() not in ("true", "false"):
        raise ValueError(f"node {node}: input {port}={value!r} is not a boolean")
    return value.lower() == "true"


def check_literal(node: str, port: str, spec: dict[str, Any], value: Any) -> None:
    """Raise ValueError naming node, port and value when a literal breaks its port's type, enum, min or max."""
    kind = spec.get("type")
    if value is None:
        return
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"node {node}: input {port}={value!r} is not an integer")
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"node {node}: input {port}={value!r} is not a number")
    if spec.get("enum") is not None and str(value) not in [str(e) for e in spec["enum"]]:
        raise ValueError(f"node {node}: input {port}={value!r} is not one of {', '.join(map(str, spec['enum']))}")
    if kind in ("integer", "number"):
        if spec.get("min") is not None and value < float(spec["min"]):
            raise ValueError(f"node {node}: input {port}={value!r} is below its minimum {spec['min']}")
        if spec.get("max") is not None and value > float(spec["max"]):
            raise ValueError(f"node {node}: input {port}={value!r} is above its maximum {spec['max']}")


DATA_TYPES = frozenset({"uri_folder", "uri_file", "mltable", "mlflow_model", "custom_model", "triton_model"})


def node_inputs(graph: Graph, node: Node, produced: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Every input port of ``node`` with its value: bound literal, pipeline parameter or component default.

    Another node's output resolves through ``produced`` (``<node.port>`` when not produced yet).
    Literals are coerced to their port's type and checked against its enum, min and max.
    """
    values: dict[str, Any] = {}
    for port, spec in node.input_specs.items():
        bound = node.inputs.get(port)
        if isinstance(bound, ParentInput):
            value = graph.parameters.get(bound.name)
        elif isinstance(bound, NodeOutput):
            value = (produced or {}).get(bound.node, {}).get(bound.port, f"<{bound.node}.{bound.port}>")
        elif bound is None:
            value = spec.get("default")
        else:
            value = bound
        if spec.get("type") not in DATA_TYPES:
            value = coerce_literal(node.name, port, spec, value)
            check_literal(node.name, port, spec, value)
        values[port] = value
    return values


def check_graph(graph: Graph) -> None:
    """Every node's literals valid and every command renderable; ValueError naming the first bad node."""
    for node in graph.nodes.values():
        render_command(node.name, node.template, node_inputs(graph, node), {p: f"<{p}>" for p in node.outputs})


def _text(value: Any) -> str:
    return str(value)


def render_command(node: str, template: str, inputs: dict[str, Any], outputs: dict[str, str]) -> list[str]:
    """The argument list for ``template`` with ``${{inputs.x}}``/``${{outputs.y}}`` filled in.

    An ``$[[...]]`` block is kept only when every port in it has a value. A port with no value
    outside such a block is an error naming the node and the port.
    """
    def has(kind: str, port: str) -> bool:
        return (inputs if kind == "inputs" else outputs).get(port) is not None

    def optional(match: re.Match[str]) -> str:
        body = match.group(1)
        return body if all(has(k, p) for k, p in _PORT.findall(body)) else ""

    argv = []
    for token in shlex.split(_OPTIONAL_BLOCK.sub(optional, template)):
        def fill(match: re.Match[str]) -> str:
            kind, port = match.group(1), match.group(2)
            if not has(kind, port):
                raise ValueError(f"node {node}: {kind[:-1]} {port!r} has no value and is not optional")
            return _text((inputs if kind == "inputs" else outputs)[port])

        argv.append(_PORT.sub(fill, token))
    return argv
