"""`atrium token EMAIL`: print a development token for EMAIL."""

from __future__ import annotations

import argparse
import sys

from services.gateway.auth import development_token
from shared.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atrium", description="Atrium command line")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a development token for EMAIL")
    token.add_argument("email")
    token.add_argument("--hours", type=float, default=12.0, help="lifetime (default 12)")
    args = parser.parse_args(argv)
    sys.stdout.write(
        development_token(args.email, get_settings(), lifetime=int(args.hours * 3600)) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
