"""`python -m lenasim explore [CONFIG]`: the local web app (:mod:`lenasim.explore`).

Thin adapter: read the config and the options, check what would fail before the server
starts (the config, the posterior, the port, Shiny being installed), print the address
and serve until Ctrl-C. Shiny is imported only here, when this command runs.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from lenasim.core.errors import ConfigError, LenasimError
from lenasim.simulation.scenario import load_scenario, output_problem

__all__ = ["add_arguments", "cmd_explore"]

DEFAULT_CONFIG = Path("configs/slow_escalation.yaml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `explore` (cli.py registers the command with them)."""
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help=f"scenario YAML the form starts from (default: {DEFAULT_CONFIG}); "
                   "the other scenario configs of its folder are offered as references")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")  # fmt: skip
    p.add_argument("--port", type=int, default=8000,
                   help="port (default: %(default)s; 0 picks a free one)")  # fmt: skip
    p.add_argument("--results", default=None, metavar="DIR",
                   help="where full runs write <DIR>/<name>/ (default: the config's output); "
                   "the app writes nothing elsewhere")  # fmt: skip
    p.add_argument("--preview-draws", type=int, default=None, metavar="N",
                   help="posterior draws of the preview (default: 200)")  # fmt: skip
    p.add_argument("--preview-patients", type=int, default=None, metavar="N",
                   help="patients of the preview (default: 200)")  # fmt: skip


def _free_port(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host`` (a free one for 0), else a ConfigError."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
            return s.getsockname()[1]
    except OSError as err:
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({err.strerror or err}); "
            "choose another port (--port 0 picks a free one) or host"
        ) from None


def build_settings(args: argparse.Namespace):
    """The app's settings from the command line (every check that can fail, first)."""
    from lenasim.explore.pipeline_adapter import load_posterior
    from lenasim.explore.session import PREVIEW_DRAWS, PREVIEW_PATIENTS, Settings

    path = Path(args.config) if args.config else DEFAULT_CONFIG
    if args.config is None and not path.is_file():
        raise ConfigError(f"no CONFIG given and {DEFAULT_CONFIG} is not in the current folder "
                          f"({Path.cwd()}): pass a scenario YAML")  # fmt: skip
    sc = load_scenario(path)
    for opt in ("preview_draws", "preview_patients"):
        val = getattr(args, opt)
        if val is not None and not 1 <= val <= 100_000:
            raise ConfigError(f"--{opt.replace('_', '-')}: must be from 1 to 100000 (got {val})")
    results = Path(args.results if args.results is not None else sc.output).resolve()
    why = output_problem(results)
    if why is not None:
        raise ConfigError(
            f"--results: {why}" if args.results is not None else f"{path}: output: {why}"
        )
    spec = Path(sc.posterior.spec).resolve()
    sc = sc.model_copy(update={"output": results,
                               "posterior": sc.posterior.model_copy(update={"spec": spec})})  # fmt: skip
    load_posterior(spec)  # a missing or stale posterior: the run's message, before serving
    refs = {}
    for other in sorted(path.parent.glob("*.yaml")):
        try:
            refs[other.stem] = load_scenario(other)
        except LenasimError:
            continue  # not a scenario config (a search config): not offered
    return Settings(initial=sc, results=results, references=refs,
                    preview_draws=args.preview_draws or PREVIEW_DRAWS,
                    preview_patients=args.preview_patients or PREVIEW_PATIENTS)  # fmt: skip


def cmd_explore(args: argparse.Namespace) -> int:
    """Handler of `python -m lenasim explore`."""
    try:
        import shiny  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise LenasimError(
            f"the explorer needs Shiny for Python ({err.name} is not installed): "
            "pip install 'lenasim[explore]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: must be from 0 to 65535 (got {args.port})")
    settings = build_settings(args)
    port = _free_port(args.host, args.port)
    from lenasim.explore.app import make_app

    app = make_app(settings)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"lenasim explore: serving {settings.initial.name} at http://{host}:{port}/ "
          f"(full runs write to {settings.results}/; Ctrl-C to stop)", flush=True)  # fmt: skip
    uvicorn.run(app, host=args.host, port=port, log_level="warning")
    print("lenasim explore: stopped", file=sys.stderr)
    return 0
