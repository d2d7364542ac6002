"""`python -m lenasim.commands.docs`: write docs/configuration.md, the reference of every
scenario config key (:mod:`lenasim.pipeline.config_docs`). ``--check`` exits 1 when the
file is out of date, as tests/project/test_docs.py does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lenasim.pipeline.config_docs import MINIMAL, OUT, UNITS, reference

__all__ = ["MINIMAL", "UNITS", "main", "reference"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lenasim.commands.docs", description=__doc__)
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if docs/configuration.md is out of date, without writing it",
    )
    p.add_argument("--out", type=Path, default=OUT, help=f"the file to write (default {OUT})")
    args = p.parse_args(argv)
    text = reference()
    if args.check:
        ok = args.out.is_file() and args.out.read_text() == text
        if not ok:
            print(f"{args.out} is out of date: run `python -m lenasim.commands.docs`",
                  file=sys.stderr)  # fmt: skip
        return 0 if ok else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
