"""The ``fusevis`` command line: one module per subcommand, each with ``add_parser`` and ``run``."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from ..errors import FuseVisError



def subcommand_modules() -> list[str]:
    """Every module in this package is a subcommand (``demo_data`` -> ``fusevis demo-data``)."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def print_json(payload) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusevis", description="Explainable MRI-PET image fusion")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in subcommand_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except FuseVisError as error:
        print(f"fusevis {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fusevis {args.command}: cancelled", file=sys.stderr)
        return 130
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as error:
        # An output path that is a file, lies under one, or may not be written: the path and the fix.
        print(f"fusevis {args.command}: error: cannot write {error.filename}: {error.strerror}; choose another --out", file=sys.stderr)
        return 2
