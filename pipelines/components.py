"""The component catalog: every YAML file in ``components/`` loaded with azure-ai-ml, by name.

A component is the contract of one step: typed ports, one command whose flags are its port names.
Two ports carry no data and are never on the command line: a lake step's ``committed`` output
and the next lake step's ``after`` input. A Delta lake is changed in place, which AML's
input/output model cannot see, so these two give the graph the edge "runs after that step's
commits".
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPONENTS_DIR = REPO_ROOT / "components"
ENVIRONMENTS_DIR = REPO_ROOT / "environments"

LAKE_INPUT = "lake"  # the lake root: a Delta lake read and written in place
ORDERING_INPUT = "after"
ORDERING_OUTPUT = "committed"
ORDERING_PORTS = frozenset({ORDERING_INPUT, ORDERING_OUTPUT})

READS_TAG = "refinery.reads"
WRITES_TAG = "refinery.writes"

_PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")


def quiet_azure_logs() -> None:
    """Silence azure-ai-ml's per-class 'experimental' notices; real warnings still show."""
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


def component_files(folder: Path = COMPONENTS_DIR) -> list[Path]:
    """The component YAML files of a folder, sorted by name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"components folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def load(path: Path) -> Any:
    """One component YAML as an azure-ai-ml component; ValueError naming the file if it does not load."""
    from azure.ai.ml import load_component

    quiet_azure_logs()
    try:
        return load_component(source=str(path))
    except Exception as exc:  # azure-ai-ml raises many types; all mean "this file is not a valid component"
        raise ValueError(f"component {path.name} does not load: {exc}") from None


def load_all(folder: Path = COMPONENTS_DIR) -> dict[str, Any]:
    """Every component of a folder, by component name; two files with one name is an error."""
    found: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in component_files(folder):
        component = load(path)
        if component.name in found:
            raise ValueError(f"component name {component.name!r} is used by both {sources[component.name]} and {path.name}")
        found[component.name] = component
        sources[component.name] = path.name
    return found


def command_template(component: Any) -> str:
    """The command line a component runs, with ``${{...}}`` placeholders still in it.

    A command component has it verbatim. A Spark component's entry file runs under spark-submit
    on AML; here it is the same module run as ``python -m`` with the same arguments.
    """
    if component.type == "command":
        return " ".join(str(component.command).split())
    if component.type == "spark":
        entry = getattr(component.entry, "entry", None)
        if not entry or not str(entry).endswith(".py"):
            raise ValueError(f"component {component.name}: Spark entry {entry!r} is not a Python file")
        module = str(entry)[: -len(".py")].replace("/", ".").replace("\\", ".")
        return " ".join(f"python -m {module} {component.args or ''}".split())
    raise ValueError(f"component {component.name}: type {component.type!r} cannot run locally (command or spark only)")


def module_of(component: Any) -> str:
    """The ``<package>.<module>`` a component's command runs."""
    tokens = command_template(component).split()
    if len(tokens) < 3 or tokens[0] not in ("python", "python3") or tokens[1] != "-m":
        raise ValueError(f"component {component.name}: command does not start with 'python -m <module>': {' '.join(tokens[:3])!r}")
    return tokens[2]


def command_ports(component: Any) -> dict[str, str]:
    """Flag name -> port name for every ``--flag ${{inputs|outputs.port}}`` pair of the command."""
    tokens = command_template(component).replace("$[[", " ").replace("]]", " ").split()
    pairs: dict[str, str] = {}
    for flag, value in zip(tokens, tokens[1:]):
        match = _PORT_REF.fullmatch(value)
        if flag.startswith("--") and match:
            pairs[flag[2:]] = match.group(2)
    return pairs


def table_patterns(component: Any, tag: str) -> list[str]:
    """The ``layer/table`` patterns a component declares it reads or writes (tag ``refinery.reads``/``writes``)."""
    value = (component.tags or {}).get(tag)
    if value is None:
        return []
    return [p for p in re.split(r"[\s,]+", str(value)) if p]
