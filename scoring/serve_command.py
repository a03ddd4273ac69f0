"""``refinery serve``: the registry's champion on http://127.0.0.1:PORT/score until Ctrl-C (see scoring.serve)."""
from __future__ import annotations

import argparse
import logging
import math


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the champion model on localhost with scoring/score.py (Ctrl-C stops)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--lake", help="lake root (default from settings); the MLflow registry sits beside it by default")
    p.add_argument("--port", default="5001", help="TCP port on 127.0.0.1 (default 5001)")
    p.add_argument("--key", help="require 'Authorization: Bearer KEY' on every request (default: no key)")
    p.add_argument("--poll-seconds", dest="poll_seconds", default="10",
                   help="how often to look up the alias in the registry; a new version is served without a restart (default 10)")
    p.add_argument("--model", default="maintenance", help="registered model name (default maintenance)")
    p.add_argument("--alias", default="champion", help="registry alias to serve and follow (default champion)")
    p.add_argument("--workers", default="1", help="server worker processes (default 1)")
    p.set_defaults(func=run)


def _number(flag: str, text: str, kind=int, minimum: float = 1):
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected a {'whole ' if kind is int else ''}number") from None
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"{flag} {text!r}: expected at least {minimum}")
    return value


def run(args: argparse.Namespace, settings) -> int:
    from scoring.serve import local_endpoint, wait_forever

    port = _number("--port", args.port)
    workers = _number("--workers", args.workers)
    poll = _number("--poll-seconds", args.poll_seconds, float, 0.1)
    logging.basicConfig(level=logging.INFO, format="refinery serve: %(message)s")
    with local_endpoint(settings, port=port, key=args.key, poll_seconds=poll, model=args.model, alias=args.alias,
                        workers=workers) as endpoint:
        c = endpoint.current
        print(f"refinery serve: {c.name} version {c.version} ({c.alias}) at {endpoint.url}"
              f"{' (key required)' if args.key else ''}; OpenAPI at {endpoint.server.base_url}/swagger.json; "
              f"following {args.model}@{args.alias} every {poll:g} s; Ctrl-C stops", flush=True)
        return wait_forever(endpoint)
