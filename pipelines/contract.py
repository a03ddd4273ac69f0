"""The component contract: its module imports and its command-line flags are exactly its ports.

For each component the module's own argparse parser is captured (its ``main(argv)`` is called
with ``parse_args`` intercepted, so nothing runs) and compared with the component: the same
flag names, every flag on the command line spelled as its port, enum choices and defaults equal.
"""
from __future__ import annotations

import argparse
import importlib
from typing import Any
from unittest import mock

from pipelines.components import ORDERING_PORTS, command_ports, command_template, module_of


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__("parser captured")
        self.parser = parser


def module_parser(module_name: str) -> argparse.ArgumentParser:
    """The parser ``<module>.main(argv)`` builds; ValueError naming the module if it has none."""
    module = importlib.import_module(module_name)
    main = getattr(module, "main", None)
    if not callable(main):
        raise ValueError(f"module {module_name} has no main(argv)")

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            main([])
        except _Captured as captured:
            return captured.parser
    raise ValueError(f"{module_name}.main(argv) returned without parsing its arguments")


def parser_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long flag name (without ``--``) -> its argparse action, help excluded."""
    flags = {}
    for action in parser._actions:  # argparse keeps its actions here; there is no public accessor
        if isinstance(action, argparse._HelpAction):
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                flags[option[2:]] = action
    return flags


def check(component: Any) -> list[str]:
    """Every way ``component`` breaks the contract with its module, as sentences naming the port or flag."""
    name = component.name
    try:
        module = module_of(component)
        parser = module_parser(module)
    except (ImportError, ValueError) as exc:
        return [f"{name}: {exc}"]
    problems = []
    pairs = command_ports(component)  # flag -> port it is given
    ports = {**dict(component.inputs), **dict(component.outputs)}
    data_ports = set(ports) - ORDERING_PORTS
    for flag, port in pairs.items():
        if flag != port:
            problems.append(f"{name}: flag --{flag} is given port {port!r}; a flag must be named as its port")
    for port in sorted(ORDERING_PORTS & set(pairs.values())):
        problems.append(f"{name}: ordering port {port!r} must not be on the command line")
    missing_on_command = sorted(data_ports - set(pairs.values()))
    if missing_on_command:
        problems.append(f"{name}: port(s) {', '.join(missing_on_command)} not on the command line {command_template(component)!r}")
    flags = parser_flags(parser)
    if set(flags) != data_ports:
        extra = sorted(set(flags) - data_ports)
        lacking = sorted(data_ports - set(flags))
        if extra:
            problems.append(f"{name}: {module} has flag(s) {', '.join('--' + f for f in extra)} with no port")
        if lacking:
            problems.append(f"{name}: port(s) {', '.join(lacking)} have no flag in {module}")
    for port in sorted(data_ports & set(flags)):
        spec, action = ports[port], flags[port]
        enum = getattr(spec, "enum", None)
        if enum and action.choices is not None and [str(e) for e in enum] != [str(c) for c in action.choices]:
            problems.append(f"{name}: port {port} enum {list(enum)} differs from {module} --{port} choices {list(action.choices)}")
        default = getattr(spec, "default", None)
        if default is not None and action.default is not None and str(default) != str(action.default):
            problems.append(f"{name}: port {port} default {default!r} differs from {module} --{port} default {action.default!r}")
    return problems
