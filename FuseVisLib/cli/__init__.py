"""The ``fusevis`` command line: one module per subcommand, each with ``add_parser`` and ``run``."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import warnings
from pathlib import Path

from ..errors import FuseVisError, FuseVisWarning



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


# Options whose values may begin with a minus sign (a pixel "-1,20"): argparse takes such a value for an
# option and reports a missing argument, so it is joined to its option and the pixel check can name it.
_SIGNED_VALUE_OPTIONS = ("--pixel",)


def _signed_values_joined(argv: list[str]) -> list[str]:
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] in _SIGNED_VALUE_OPTIONS and token[:1] == "-" and token[1:2].isdigit():
            joined[-1] = f"{joined[-1]}={token}"
        else:
            joined.append(token)
    return joined


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_signed_values_joined(sys.argv[1:] if argv is None else list(argv)))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return int(args.run(args) or 0)
    except FuseVisError as error:
        print(f"fusevis {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fusevis {args.command}: cancelled", file=sys.stderr)
        return 130
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as error:
        # An output path that is a file, lies under one, or may not be written: the path and the fix.
        # Input readers report their own files; anything else is named without guessing at a fix.
        if _under_output(error.filename, getattr(args, "out", None)):
            print(f"fusevis {args.command}: error: cannot write {error.filename}: {error.strerror}; choose another --out", file=sys.stderr)
        else:
            print(f"fusevis {args.command}: error: cannot use {error.filename}: {error.strerror}", file=sys.stderr)
        return 2


def _under_output(filename, out) -> bool:
    """Whether ``filename`` is the output folder, lies in it, or is one of the folders above it."""
    if filename is None or out is None:
        return False
    path, out = Path(filename).absolute(), Path(out).absolute()
    return path == out or out in path.parents or path in out.parents


def _one_line_warning(command: str):
    """FuseVis's own warnings as one line like its errors; any other warning as Python shows it."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, FuseVisWarning):
            print(f"fusevis {command}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    return show
