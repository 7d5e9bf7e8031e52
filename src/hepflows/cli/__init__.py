"""The ``hepflows`` command: thin argument parsing that calls the library and prints.

Errors a user can cause (:class:`hepflows.io.InputError`, bad options) are printed on one line and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hepflows import __version__
from hepflows.cli import calo, demo, evaluate, integrate
from hepflows.io import InputError

COMMANDS = [demo, integrate, calo, evaluate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hepflows",
        description="Normalizing flows for fast, validated particle-physics simulation.",
    )
    parser.add_argument("--version", action="version", version=f"hepflows {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _name(args: argparse.Namespace) -> str:
    verb = getattr(args, "verb", None)
    return f"{args.command} {verb}" if verb else args.command


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as exc:
        print(f"hepflows {_name(args)}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable folder, full disk, missing file...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hepflows {_name(args)}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hepflows {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
