"""`python -m lenasim validate`: the command over the validation pipeline
(:mod:`lenasim.pipeline.validate`): leave-one-trial-out, SBC, prior sensitivity ->
results/validation/, its report printed."""

from __future__ import annotations

from pathlib import Path

from lenasim.pipeline.validate import DEFAULT_OUT, ValidateOptions, run_validation

__all__ = ["DEFAULT_OUT", "cmd_validate"]


def cmd_validate(args) -> int:
    """Handler of `python -m lenasim validate` (options in cli.py)."""
    opts = ValidateOptions(
        spec=Path(args.spec), out=Path(args.out),
        configs=tuple(Path(p) for p in args.configs) if getattr(args, "configs", None) else None,
        prior_scale=args.prior_scale, sbc=int(args.sbc or 0),
        only=getattr(args, "only", None), variants=bool(getattr(args, "variants", False)),
        draws=args.draws, tune=getattr(args, "tune", None),
        quiet=bool(getattr(args, "quiet", False)),
    )  # fmt: skip
    summary = run_validation(opts)
    print((opts.out / "report.md").read_text())
    return 0 if summary else 1
