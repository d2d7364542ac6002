"""Command-line interface: thin glue over the pipeline functions.

Each subcommand's handler lives in the module that owns the work and is imported
only when that subcommand runs, so `lenasim evidence` or `lenasim run` with a
fitted posterior never imports PyMC.

Exit codes: 0 done; 2 a problem with the input or the files, stated in one message
(never a traceback); 130 interrupted (Ctrl-C or SIGTERM, handled alike), with nothing
half-written left.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lenasim import __version__
from lenasim.commands.explore import add_arguments as explore_arguments
from lenasim.commands.patient import add_arguments
from lenasim.core.errors import LenasimError
from lenasim.core.interrupts import handle_interrupts, interrupted
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.core.vocabulary import GATE

SPEC_HELP = "model spec (default: the model shipped with lenasim, lenasim/models/default.yaml)"

# subcommand -> (module, handler, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "lenasim.commands.run",
        "cmd_run",
        "simulate scenario configs and write results/<name>/",
    ),
    "search": (
        "lenasim.commands.search",
        "cmd_search",
        "search schedules within risk limits; write results/search-<name>/",
    ),
    "design": (
        "lenasim.commands.design",
        "cmd_design",
        "simulate a schedule-finding trial's operating characteristics; write "
        "results/design-<name>/",
    ),
    "compare": ("lenasim.commands.compare", "cmd_compare", "paired comparison of finished runs"),
    "fit": ("lenasim.commands.fit", "cmd_fit", "fit the Bayesian model to the evidence (NUTS)"),
    "plots": (
        "lenasim.commands.fit",
        "cmd_plots",
        "redraw the posterior plots, and store the row predictions again, from a saved posterior",
    ),
    "evidence": (
        "lenasim.commands.evidence",
        "cmd_evidence",
        "print or export the cited evidence table",
    ),
    "patient": (
        "lenasim.commands.patient",
        "cmd_patient",
        "one patient's risks (kidney function, tumour burden) under a config's schedule",
    ),
    "validate": (
        "lenasim.commands.validate",
        "cmd_validate",
        "leave-one-trial-out, SBC, prior sensitivity",
    ),
    "explore": (
        "lenasim.commands.explore",
        "cmd_explore",
        "a local web app: edit a scenario in a form, see its risks move",
    ),
}


def _whole(minimum: int, maximum: int | None = None, bound: str = ""):
    """argparse type: a whole number from ``minimum`` (to ``maximum``, said as ``bound``)."""

    def parse(text: str) -> int:
        try:
            val = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number (got {text[:20]!r})"
            ) from None
        if maximum is not None and not minimum <= val <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {bound or maximum}")
        if val < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum} (got {val})")
        return val

    return parse


_count, _count0, _seed = _whole(1), _whole(0), _whole(0, 2**64 - 1, "2**64 - 1")


def _scale(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        val = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text[:20]!r})") from None
    if not (0 < val < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text[:20]})")
    return val


def _simulating(
    sub,
    name: str,
    *,
    description: str | None = None,
    results: str,
    plots: str,
    quiet: str,
    refit: str,
    patients: bool = True,
) -> argparse.ArgumentParser:
    """The sub-parser of a command that simulates over a posterior and writes a results
    folder (run, search, design), with the options they share; the texts that differ
    are given: ``results`` (the default folder), ``plots`` (what --no-plots skips),
    ``quiet`` and ``refit`` (their help)."""
    p = sub.add_parser(name, help=COMMANDS[name][2], description=description or COMMANDS[name][2])
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier result of the same kind (never a folder that is not a "
        "lenasim result)",
    )
    p.add_argument(
        "--results", default=None, metavar="DIR", help=f"results folder (default: {results})"
    )
    if patients:
        p.add_argument(
            "--patients", type=int, default=None, help="override the number of virtual patients"
        )
    p.add_argument("--draws", type=int, default=None, help="override the number of posterior draws")
    p.add_argument("--no-plots", action="store_true", help=f"skip {plots}")
    p.add_argument("--quiet", action="store_true", help=quiet)
    p.add_argument("--refit", action="store_true", help=refit)
    return p


def _dask(p: argparse.ArgumentParser, what: str) -> None:
    """--dask and --workers of a command that can run its batches on Dask."""
    p.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help=f"run batches of {what} on Dask: `local` (a LocalCluster on this machine) or "
        "a scheduler address tcp://HOST:PORT (needs lenasim[dask]); results are identical",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes of --dask local (default: CPUs)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lenasim",
        description=(
            "lenasim: per-cycle probabilities of tumor flare, tumor lysis syndrome and grade 3-4 "
            "neutropenia under lenalidomide schedules in CLL, from a Bayesian model fitted to "
            "the published trials, with honest intervals."
        ),
        epilog="Run `python -m lenasim COMMAND --help` for the options of one command.",
    )
    p.add_argument("--version", action="version", version=f"lenasim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = _simulating(
        sub, "run", results="config's output or results/", plots="the PNG plots and the report (the comparison of several configs keeps its report.html, without figures)",
        quiet="no progress bars",
        refit="fit the model first if its posterior is missing or stale (imports PyMC, takes "
        "minutes); without it such a posterior is an error",
    )  # fmt: skip
    r.add_argument("configs", nargs="+", metavar="CONFIG", help="scenario YAML file(s)")

    s = _simulating(
        sub,
        "search",
        description=(
            "Simulate every schedule of a search config's space on the same random numbers, "
            "keep those within its risk limits, rank them by its objectives and write "
            "results/search-<name>/ (candidates.csv, pareto.png, report.md, run folders of "
            "the best). The run time is estimated first; above time_budget_minutes the "
            "search is refused unless --yes."
        ),
        results="config's output",
        plots="pareto.png and the run folders' plots",
        quiet="no progress bar or summary",
        refit="fit the model first if its posterior is missing or stale",
    )
    s.add_argument("config", metavar="CONFIG", help="search YAML file (configs/search_*.yaml)")
    _dask(s, "candidates")
    s.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="candidates per Dask task (default: ~4 per worker)",
    )
    s.add_argument("--yes", action="store_true", help="run even above the config's time budget")
    s.add_argument("--top", type=int, default=None, help="override the number of top run folders")

    dg = _simulating(
        sub, "design", results="config's output", plots="selection.png",
        quiet="no progress bars or summary", refit="fit first if the posterior is stale",
        patients=False,
    )  # fmt: skip
    dg.add_argument("config", metavar="CONFIG", help="design YAML file (configs/design_*.yaml)")
    dg.add_argument("--trials", type=int, default=None, help="override the simulated trials")
    _dask(dg, "trials")

    c = sub.add_parser(
        "compare",
        help=COMMANDS["compare"][2],
        description=(
            "Compare finished runs; the first is the reference. Differences are paired per "
            "posterior draw when the runs share draws and seed, and unpaired (with a warning) otherwise."
        ),
    )
    c.add_argument(
        "results",
        nargs="+",
        metavar="RESULT_DIR",
        help="finished run folders (results/<name>/); the first is the reference",
    )
    c.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where to write the comparison (default: results/compare-<names>/)",
    )
    c.add_argument("--overwrite", action="store_true", help="replace an earlier comparison")

    f = sub.add_parser(
        "fit",
        help=COMMANDS["fit"][2],
        description=(
            "Fit the model spec to the evidence with NUTS (4 chains), print diagnostics, save the "
            "posterior next to the spec (<spec>.nc), its plots and every evidence row's new-trial "
            "prediction (what a run's mirrored trial reads) in <spec>/. Fails when the "
            f"convergence gate ({GATE.words()}) fails, unless --allow-unconverged."
        ),
    )
    f.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC), help=SPEC_HELP)
    f.add_argument(
        "--allow-unconverged", action="store_true", help="save a failing posterior, marked as such"
    )
    f.add_argument(
        "--draws", type=_count, default=None, help="draws per chain (default: the spec's)"
    )
    f.add_argument(
        "--tune", type=_count, default=None, help="tuning steps per chain (default: the spec's)"
    )
    f.add_argument("--chains", type=_count, default=None, help="chains (default: the spec's)")
    f.add_argument("--seed", type=_seed, default=None, help="sampler seed (default: the spec's)")
    f.add_argument(
        "--sampler",
        choices=["pymc", "nutpie"],
        default=None,
        help="NUTS implementation (default: the spec's)",
    )
    f.add_argument("--no-plots", action="store_true", help="skip the posterior plots")
    f.add_argument(
        "--patients",
        metavar="CSV",
        default=None,
        help="a CSV of patient-cycles to fit beside the evidence rows (default: the spec's "
        "patient_data; columns in the README, 'Your own patients')",
    )
    f.add_argument(
        "--no-evidence",
        action="store_true",
        help="fit the patient-cycles alone, without the evidence rows",
    )
    f.add_argument("--quiet", action="store_true", help="no progress bars")

    pl = sub.add_parser("plots", help=COMMANDS["plots"][2], description=COMMANDS["plots"][2])
    pl.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC), help=SPEC_HELP)

    e = sub.add_parser(
        "evidence",
        help=COMMANDS["evidence"][2],
        description=(
            "Print the evidence table grouped by trial: schedule in words, n, each outcome with "
            "count/denominator and unit, and whether it enters the fit."
        ),
    )
    e.add_argument("--csv", default=None, metavar="PATH", help="write the table as CSV")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    e.add_argument("--trial", default=None, help="show one trial only")

    v = sub.add_parser(
        "validate",
        help=COMMANDS["validate"][2],
        description=(
            "Leave-one-trial-out predictive checks, simulation-based calibration and prior "
            "sensitivity; writes results/validation/."
        ),
    )
    v.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC), help=SPEC_HELP)
    v.add_argument(
        "--prior-scale",
        type=_scale,
        default=None,
        help="refit with prior scales multiplied by this",
    )
    v.add_argument(
        "--configs",
        nargs="+",
        default=None,
        metavar="CONFIG",
        help="scenario configs for the prior sensitivity and the literature's claims "
        "(default: those in the configs/ folder beside the spec's folder; the claims use "
        "slow_escalation.yaml among them, or the first)",
    )
    v.add_argument(
        "--sbc",
        type=_count0,
        default=0,
        metavar="N",
        help="simulation-based calibration with N fits (the README's run: --sbc 200 --draws "
        "250, ~40 min on 2 cores)",
    )
    v.add_argument(
        "--only",
        choices=["loto", "prior", "sbc", "claims", "variants"],
        default=None,
        help="run one part only (default: leave-one-trial-out and the literature's claims, "
        "plus --prior-scale/--sbc/--variants if given); variants: leave-one-trial-out of the "
        "unconstrained and the Student-t model beside the default",
    )
    v.add_argument(
        "--variants",
        action="store_true",
        help="also run leave-one-trial-out for the model without the monotone constraint and "
        "with Student-t trial effects (model v2's choices), beside the default",
    )
    v.add_argument("--draws", type=_count, default=None, help="draws per chain in each refit")
    v.add_argument("--tune", type=_count, default=None, help="tuning steps per chain in each refit")
    v.add_argument(
        "--out",
        default="results/validation",
        metavar="DIR",
        help="where to write the validation (default: %(default)s; only a validation "
        "written there replaces models/<spec>/validation.json, which runs quote)",
    )
    v.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    add_arguments(sub.add_parser("patient", help=COMMANDS["patient"][2],
                                 description=COMMANDS["patient"][2]))  # fmt: skip

    explore_arguments(sub.add_parser("explore", help=COMMANDS["explore"][2],
                                     description=COMMANDS["explore"][2]))  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, handler, _ = COMMANDS[args.command]
    with handle_interrupts():  # SIGTERM as SIGINT: KeyboardInterrupt, recorded
        try:
            fn = getattr(importlib.import_module(module), handler)
            return int(fn(args) or 0)
        except LenasimError as err:
            print(f"lenasim {args.command}: error: {err}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # The reader stopped reading (`lenasim evidence | head`): end quietly, as Unix
            # tools do, with SIGPIPE's status; nothing more can reach it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except KeyboardInterrupt:
            by = interrupted()
            print(
                f"lenasim {args.command}: interrupted{f' ({by})' if by else ''}; what was "
                "under way was not saved, and nothing half-written was left",
                file=sys.stderr,
            )
            return 130
        except OSError as err:  # the file system's own refusal (disk full, permissions...)
            print(f"lenasim {args.command}: error: {os_error_text(err)}", file=sys.stderr)
            return 2


def shorten(text: str, limit: int = 120) -> str:
    """A path or value cut in the middle when long (its length said)."""
    text = str(text)
    if len(text) <= limit:
        return text
    half = (limit - 30) // 2
    return f"{text[:half]}...{text[-half:]} ({len(text)} characters)"


def os_error_text(err: OSError) -> str:
    """An OSError in words: what went wrong and the file (shortened when long)."""
    what = err.strerror or str(err)
    if err.filename is None:
        return shorten(what, 300)
    where = f"{shorten(os.fsdecode(err.filename))}"
    if getattr(err, "filename2", None):
        where += f" -> {shorten(os.fsdecode(err.filename2))}"
    return f"{what}: {where}"
