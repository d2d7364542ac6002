"""The validation pipeline: leave-one-trial-out, simulation-based calibration, prior
sensitivity and the literature's claims -> results/validation/ (all or nothing), and the
record beside the posterior that every run quotes.

The scenario configs it simulates (prior sensitivity, the base scenario of the claims)
come from the caller (``validate --configs``) or, by default, from the ``configs/``
folder of the project the spec belongs to (``<spec folder>/../configs``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenasim.core.errors import ConfigError
from lenasim.core.shipped import is_shipped, refuse_writing_installed_model
from lenasim.core.vocabulary import GATE
from lenasim.core.writers import write_atomically
from lenasim.evidence.table import fitted_rows, load_arms, load_evidence
from lenasim.model.fit import Fitter
from lenasim.model.given import as_given
from lenasim.model.likelihood import prepare
from lenasim.model.posterior import load_group_draws, load_posterior
from lenasim.model.spec import ModelSpec, load_spec, posterior_path
from lenasim.outputs.judgements.caveats import validation_record_path, write_validation_record
from lenasim.validation.loto import (
    EFFECTS_PER_DRAW,
    elpd_difference,
    loto,
    loto_summary,
    meta_comparison,
    no_dose_spec,
    refit_fn,
)
from lenasim.validation.plots import calibration_plot, pit_plot, rank_histograms
from lenasim.validation.report import validation_report
from lenasim.validation.sbc import sbc, sbc_summary
from lenasim.validation.sensitivity import prior_sensitivity

__all__ = ["DEFAULT_OUT", "ValidateOptions", "run_validation", "scenario_configs"]

CLAIMS_BASE = "slow_escalation.yaml"


@dataclass(frozen=True)
class ValidateOptions:
    """What to validate and how (the command line's choices)."""

    spec: Path
    out: Path
    configs: tuple[Path, ...] | None = None
    prior_scale: float | None = None
    sbc: int = 0
    only: str | None = None
    variants: bool = False
    draws: int | None = None
    tune: int | None = None
    quiet: bool = False


def scenario_configs(spec_path: Path, given: tuple[Path, ...] | None) -> list[Path]:
    """The scenario configs to simulate: those given, or the scenario configs (not
    ``search_*`` nor ``design_*``) of the ``configs/`` folder beside the spec's folder (the
    path as written: the repository's ``models/`` is a link into the package), else of
    the current folder's ``configs/`` (the shipped spec, inside an installed package,
    has none beside it)."""
    if given:
        missing = [p for p in given if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"--configs: {missing[0]}: scenario config file not found")
        return [Path(p) for p in given]
    beside = Path(os.path.abspath(spec_path)).parent.parent / "configs"
    folders = [beside] + ([Path.cwd() / "configs"] if is_shipped(spec_path) else [])
    for folder in folders:
        found = sorted(
            p for p in folder.glob("*.yaml") if not p.name.startswith(("search_", "design_"))
        )
        if found:
            return found
    raise ConfigError(
        f"{spec_path}: no scenario configs in {' or '.join(str(f) for f in folders)} (the "
        "configs/ folder beside the spec's folder); name them with --configs CONFIG ..."
    )


DEFAULT_OUT = "results/validation"  # `validate --out`'s default (cli.py)


def _atomic_write(out: Path, build) -> None:
    """Write the validation folder all or nothing (:func:`write_atomically`); files of an
    earlier validation that this run does not produce are carried over (and summary.json
    merged), so `validate --sbc N` does not erase an earlier LOTO."""
    import shutil

    out = Path(out)

    def build_all(tmp: Path) -> None:
        summary = build(tmp)
        if out.exists():
            for f in out.iterdir():
                if f.is_file() and f.name != "manifest.json" and not (tmp / f.name).exists():
                    shutil.copy2(f, tmp / f.name)
            old_json = out / "summary.json"
            if old_json.exists():
                summary = json.loads(old_json.read_text()) | summary
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
        (tmp / "report.md").write_text(validation_report(summary))

    write_atomically(out, build_all, kind="validation", overwrite=True,
                     hint="choose another folder with --out")  # fmt: skip


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"lenasim validate: {msg}", file=sys.stderr)


def run_validation(args: ValidateOptions) -> dict:
    """Run the validation ``args`` asks for and write it to ``args.out``; return its summary.

    Runs LOTO for the full model and the model without dose terms (unless ``--only``
    says otherwise), prior sensitivity with ``--prior-scale``, SBC with ``--sbc N``.
    """
    quiet = bool(getattr(args, "quiet", False))
    spec_path = Path(args.spec)
    if Path(getattr(args, "out", None) or DEFAULT_OUT).resolve() == Path(DEFAULT_OUT).resolve():
        refuse_writing_installed_model(spec_path, "validate")  # before the work: see below
    spec = load_spec(spec_path)
    s = spec.sampler
    # Refits use the spec's sampler settings (as `fit` does) unless --draws/--tune say
    # otherwise; each model is compiled once (and cached between runs).
    settings = {"draws": args.draws or s.draws, "tune": getattr(args, "tune", None) or s.tune}
    only = getattr(args, "only", None)
    do_loto = only in (None, "loto")
    do_prior = args.prior_scale is not None and only in (None, "prior")
    do_sbc = bool(args.sbc) and only in (None, "sbc")
    do_variants = only == "variants" or bool(getattr(args, "variants", False))
    do_claims = only in (None, "claims")
    if args.sbc < 0:
        raise ConfigError(f"--sbc: must be a whole number >= 0 of fits (got {args.sbc})")
    scenario_paths: list[Path] = []
    claims_base = None
    if do_prior or do_claims:
        scenario_paths = scenario_configs(spec_path, args.configs)
        named = [p for p in scenario_paths if p.name == CLAIMS_BASE]
        claims_base = named[0] if named else scenario_paths[0]
    rows = fitted_rows(load_evidence())
    arms = load_arms()
    meta = {"spec": str(spec_path), "chains": s.chains, **settings,
            "target_accept": s.target_accept, "effects_per_draw": EFFECTS_PER_DRAW,
            "sampler": s.backend}  # fmt: skip
    _say(f"refits: {s.chains} chains x {settings['draws']} draws after {settings['tune']} "
         f"tuning steps ({s.backend}), as `fit`", quiet)  # fmt: skip

    fitters: dict[str, Fitter] = {}

    def given(sp: ModelSpec) -> tuple:
        """The rows and arms as ``sp``'s dose and cycles-at-risk options give them."""
        return as_given(rows, arms, sp)

    def fitter_for(sp: ModelSpec) -> Fitter:
        if sp.hash() not in fitters:
            f = fitters[sp.hash()] = Fitter(
                sp, prepare(*given(sp), sp.quadrature_nodes, sp.quadrature_rule, sp.link)
            )
            t0 = time.perf_counter()
            f.compile()
            _say(f"compiled {sp.name} in {time.perf_counter() - t0:.0f} s", quiet)
        return fitters[sp.hash()]

    def build(tmp: Path) -> dict:
        summary: dict = {"settings": meta}
        if do_loto:
            full = fitter_for(spec)
            table, refits = loto(*given(spec), refit_fn(full, s.seed, **settings),
                                 quadrature_nodes=spec.quadrature_nodes,
                                 quadrature_rule=spec.quadrature_rule, seed=spec.sampler.seed,
                                 progress=not quiet, desc="LOTO refits (full model)")  # fmt: skip
            red_spec = no_dose_spec(spec)
            reduced = fitter_for(red_spec)
            table_r, refits_r = loto(*given(red_spec),
                                     refit_fn(reduced, s.seed, **settings),
                                     quadrature_nodes=spec.quadrature_nodes,
                                     quadrature_rule=spec.quadrature_rule, seed=spec.sampler.seed,
                                     progress=not quiet, desc="LOTO refits (no dose terms)")  # fmt: skip
            table["lpd_no_dose"] = table_r["lpd"].to_numpy()
            table["pit_no_dose"] = table_r["pit"].to_numpy()
            table.to_csv(tmp / "loto.csv", index=False)
            calibration_plot(table, tmp / "calibration.png")
            calibration_plot(table_r, tmp / "calibration_no_dose.png",
                             "LOTO predictions of the model without dose terms")  # fmt: skip
            pit_plot(table, tmp / "pit.png")
            # Where the model wins or loses against the meta-analysis (issue 23, item 1):
            # stored inside "loto", so the record beside the posterior carries it.
            vs_meta_rows, vs_meta = meta_comparison(table)
            vs_meta_rows.to_csv(tmp / "loto_vs_meta.csv", index=False)
            summary["loto"] = loto_summary(table) | {"refits": refits, "vs_meta": vs_meta}
            summary["loto_no_dose"] = loto_summary(table_r) | {"refits": refits_r}
            summary["model_comparison"] = elpd_difference(table["lpd"], table["lpd_no_dose"])
        if do_variants:
            # Model v2's choices, decided by leave-one-trial-out: the monotone slopes
            # against the same priors unconstrained, normal against Student-t trial effects.
            variants = {
                "unconstrained": spec.model_copy(update={"monotone": False, "name": "unconstrained"}),
                "student_t": spec.model_copy(update={"trial_effects": "student_t",
                                                     "name": "student_t"}),
            }  # fmt: skip
            out_v = {}
            frames = {}
            for name, sp in [("default", spec), *variants.items()]:
                if name == "default" and do_loto:  # computed above, same settings and seed
                    frames[name] = table.drop(columns=["lpd_no_dose", "pit_no_dose"])
                    frames[name].to_csv(tmp / f"loto_{name}.csv", index=False)
                    out_v[name] = summary["loto"]
                    continue
                f = fitter_for(sp)
                tab, ref_fits = loto(*given(sp), refit_fn(f, s.seed, **settings),
                                     quadrature_nodes=sp.quadrature_nodes,
                                     quadrature_rule=sp.quadrature_rule, seed=spec.sampler.seed,
                                     progress=not quiet, desc=f"LOTO refits ({name})")  # fmt: skip
                frames[name] = tab
                tab.to_csv(tmp / f"loto_{name}.csv", index=False)
                out_v[name] = loto_summary(tab) | {"refits": ref_fits}
            for name in variants:
                out_v[name]["vs_default"] = elpd_difference(frames[name]["lpd"],
                                                            frames["default"]["lpd"])  # fmt: skip
            summary["loto_variants"] = out_v
            if not do_loto:  # the default's leave-one-trial-out is the same computation
                summary["loto"] = out_v["default"]
                frames["default"].to_csv(tmp / "loto.csv", index=False)
        if do_claims:
            import dataclasses

            from lenasim.validation.claims import claims_table

            post = load_posterior(posterior_path(spec_path), spec_path)
            prior = load_group_draws(posterior_path(spec_path), "prior")
            if prior is not None:
                prior = dataclasses.replace(
                    prior, trial_df=post.draws.trial_df, link=post.draws.link
                )
            tab = claims_table(post.draws, prior, claims_base)
            tab.to_csv(tmp / "claims.csv", index=False)
            summary["claims"] = tab.to_dict(orient="records")
        if do_prior:
            factor = float(args.prior_scale)
            configs = scenario_paths
            ones = np.ones(len(rows))
            base = refit_fn(fitter_for(spec), s.seed, **settings)(ones)
            wide = refit_fn(fitter_for(spec.scaled(factor)), s.seed, **settings)(ones)
            patients, n_draws = 300, 200
            tab = prior_sensitivity(base.draws, wide.draws, configs, patients=patients,
                                    n_draws=n_draws)  # fmt: skip
            tab.to_csv(tmp / "prior_sensitivity.csv", index=False)
            summary["prior_sensitivity"] = {
                "factor": factor, "patients": patients, "draws": n_draws,
                "fits": {"default": base.diagnostics, "widened": wide.diagnostics},
                "table": tab.to_dict(orient="records")}  # fmt: skip
        if do_sbc:
            f = fitter_for(spec)
            ranks = sbc(f, int(args.sbc), seed=s.seed, progress=not quiet, **settings)
            ranks.to_csv(tmp / "sbc_ranks.csv", index=False)
            rank_histograms(ranks, tmp / "sbc_ranks.png")
            fits = ranks.drop_duplicates("fit")
            summary["sbc"] = {"n_fits": int(args.sbc), "L": int(ranks["L"].iloc[0]),
                              "alpha": 0.05, "params": sbc_summary(ranks),
                              "chains": s.chains, **settings,
                              "fits_with_divergences": int((fits["divergences"] > 0).sum()),
                              "seconds_per_fit": float(fits["seconds"].mean()),
                              "fits_failing_gate": int(GATE.failing(fits).sum())}  # fmt: skip
        return summary

    out = Path(args.out)
    _atomic_write(out, build)
    summary = json.loads((out / "summary.json").read_text())

    # The record beside the posterior is what every run quotes: only a validation into the
    # default folder replaces it (a trial run into a scratch folder must not).
    if out.resolve() == Path(DEFAULT_OUT).resolve():
        record = write_validation_record(spec_path, summary, {"loto": do_loto or do_variants,
                                                              "sbc": do_sbc,
                                                              "prior_sensitivity": do_prior})  # fmt: skip
        _say(f"stored the latest validation beside the posterior: {record}", quiet)
    else:
        _say(f"not stored beside the posterior ({validation_record_path(spec_path)}, quoted by "
             f"every run): only a validation into {DEFAULT_OUT}/ replaces it", quiet)  # fmt: skip
    _say(f"wrote {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})", quiet)
    return summary
