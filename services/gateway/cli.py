"""`atrium token EMAIL`: print a development token for EMAIL, signed with
`ATRIUM_JWT_SECRET`, or when that is not set, with the secret `make run` generated for
this installation."""

from __future__ import annotations

import argparse
import sys

from services.gateway.auth import development_token
from shared.settings import InsecureSettingsError, installation_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atrium", description="Atrium command line")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a development token for EMAIL")
    token.add_argument("email")
    token.add_argument("--hours", type=float, default=12.0, help="lifetime (default 12)")
    args = parser.parse_args(argv)
    settings = installation_settings()
    try:
        settings.refuse_insecure(["jwt_secret"], refusing="atrium token cannot sign")
    except InsecureSettingsError as refused:
        sys.stderr.write(f"{refused}\n")
        return 1
    sys.stdout.write(
        development_token(args.email, settings, lifetime=int(args.hours * 3600)) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
