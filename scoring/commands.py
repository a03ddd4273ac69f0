"""``refinery score``: batch scoring of the lake with the registered champions (see batch_score)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace, settings) -> int:
    from scoring.batch_score import score

    score(settings, args.alias, args.features_version, args.recent_hours)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from scoring.batch_score import DEFAULT_ALIAS, DEFAULT_RECENT_HOURS

    p = sub.add_parser("score", help="batch-score gold/asset_features and recommend production settings into gold")
    p.add_argument("--lake", help="lake root (default from settings)")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="registry alias of the models (default champion)")
    p.add_argument("--features-version", dest="features_version", type=int, default=None,
                   help="Delta version of gold/asset_features to score (default: latest)")
    p.add_argument("--recent-hours", dest="recent_hours", type=int, default=DEFAULT_RECENT_HOURS,
                   help="per unit, how many of the latest hours get a settings recommendation")
    p.set_defaults(func=run)
