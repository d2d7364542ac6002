"""Self-contained HTML reports a protocol committee can read.

One file, no server: PNG plots embedded as base64 data URIs, CSS inline, no
JavaScript. Every piece of text from configs, manifests or the evidence table is
escaped. :func:`run_report` describes one run; :func:`compare_report` a comparison.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["compare_report", "headline_table", "run_report"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
p.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
.warn { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 0.8em; }
dl { margin: 0.3em 0; } dt { font-weight: 600; } dd { margin: 0 0 0.4em 1.2em; }
code, .mono { font-family: Menlo, Consolas, monospace; font-size: 0.88em; }
footer { color: #777; font-size: 0.85em; margin-top: 3em; }
"""

_EVENT_ORDER = ("neutropenia", "flare", "flare_grade3plus", "tls")


# ---------------------------------------------------------------- small HTML helpers


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def _page(title: str, body: Sequence[str]) -> str:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + f"\n</main>\n<footer>Written by lenasim on {_e(stamp)}. Self-contained file: "
        "plots are embedded, nothing is loaded from the network.</footer>\n</body>\n</html>\n"
    )


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None
) -> str:
    numeric = list(numeric or [False] * len(header))
    out = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(v)}</td>' if numeric[i] else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _value_html(v: Any) -> str:
    """Render a config value (dict / list / scalar) as escaped nested HTML."""
    if isinstance(v, dict):
        if not v:
            return "<em>none</em>"
        return (
            "<dl>"
            + "".join(f"<dt>{_e(k)}</dt><dd>{_value_html(x)}</dd>" for k, x in v.items())
            + "</dl>"
        )
    if isinstance(v, list | tuple):
        if not v:
            return "<em>none</em>"
        if all(not isinstance(x, dict | list | tuple) for x in v):
            return _e(", ".join(str(x) for x in v))
        return "<ul>" + "".join(f"<li>{_value_html(x)}</li>" for x in v) + "</ul>"
    if v is None:
        return "<em>not given</em>"
    return _e(v)


def _img_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<figure><img src="{_img_data_uri(png)}" alt="{_e(alt)}"></figure>'


def _fig_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    return buf.getvalue()


def _pct(x: float, digits: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * x:.{digits}f}%"


def _interval(mean: float, lo: float, hi: float) -> str:
    return f"{_pct(mean)} ({_pct(lo)} to {_pct(hi)})"


def _event_title(event: str) -> str:
    from lenasim.outputs.figures import event_title

    return event_title(event)


def _events(ds: Any) -> list[str]:
    have = [str(e) for e in ds["event"].values]
    return [e for e in _EVENT_ORDER if e in have] + [e for e in have if e not in _EVENT_ORDER]


# ---------------------------------------------------------------- content blocks


def headline_table(ds: Any) -> pd.DataFrame:
    """Per event: cycle 1, cycle 2, cycles 3+ (mean per-cycle probability) and cumulative.

    Each cell is computed per posterior draw, then summarised as mean (q05, q95).
    """
    import pandas as pd

    cycles = np.asarray(ds["cycle"].values)
    last = int(cycles.max())
    rows = []
    for event in _events(ds):
        pc = np.asarray(ds["per_cycle"].sel(event=event).transpose("draw", "cycle").values, float)
        cu = np.asarray(ds["cumulative"].sel(event=event).transpose("draw", "cycle").values, float)
        cells: dict[str, Any] = {"event": event, "Event": _event_title(event)}
        for label, mask in (
            ("Cycle 1", cycles == 1),
            ("Cycle 2", cycles == 2),
            ("Cycles 3+ (per cycle)", cycles >= 3),
        ):
            # NaN where no patient starts a cycle (all stopped in that draw): left out.
            x = pc[:, mask]
            x = x[:, np.isfinite(x).any(axis=0)] if mask.any() else x
            ok = np.isfinite(x).any(axis=1) if x.size else np.zeros(0, bool)
            if ok.any():
                x = np.nanmean(x[ok], axis=1)
                cells[label] = _interval(x.mean(), *np.quantile(x, [0.05, 0.95]))
            else:
                cells[label] = "-"
        x = cu[:, cycles == last][:, 0]
        cells[f"By end of cycle {last}"] = _interval(x.mean(), *np.quantile(x, [0.05, 0.95]))
        rows.append(cells)
    return pd.DataFrame(rows)


def _headline_html(ds: Any) -> str:
    tab = headline_table(ds).drop(columns="event")
    cols = list(tab.columns)
    return (
        _table(cols, tab.itertuples(index=False), [False] + [True] * (len(cols) - 1))
        + '<p class="sub">Posterior mean with 90% credible interval. Cycle columns: probability '
        "of the event in that cycle for a patient who starts it; cycles 3+: the average of the "
        "per-cycle probabilities from cycle 3 on; last column: probability of at least one event "
        "over the whole schedule.</p>"
    )


def _dose_html(ds: Any) -> str:
    cycles = np.asarray(ds["cycle"].values)
    header = ["Cycle"]
    numeric = [True]
    cols: list[list[str]] = [[str(int(c)) for c in cycles]]

    def add(name: str, values: list[str]) -> None:
        header.append(name)
        numeric.append(True)
        cols.append(values)

    def draws(var: str) -> np.ndarray | None:
        return np.asarray(ds[var].transpose("draw", "cycle").values, float) if var in ds else None

    if "planned_intensity" in ds:
        add(
            "Planned (mg/day)",
            [f"{v:.2f}" for v in np.asarray(ds["planned_intensity"].values, float)],
        )
    x = draws("dose_intensity")
    if x is not None:
        q = np.quantile(x, [0.05, 0.95], axis=0)
        add(
            "Delivered (mg/day, 90% interval)",
            [
                f"{m:.2f} ({lo:.2f} to {hi:.2f})"
                for m, lo, hi in zip(x.mean(0), q[0], q[1], strict=True)
            ],
        )
    x = draws("dose_mean_mg")
    if x is not None:
        add("Dose on drug days (mg/day)", [f"{m:.1f}" for m in x.mean(0)])
    for var, label in (
        ("share_on", "Starting the cycle"),
        ("share_at_target", "At target dose"),
        ("share_held", "Held or reduced"),
        ("share_reduced", "Reduced after it"),
        ("share_stopped", "Stopped by its end"),
    ):
        x = draws(var)
        if x is not None:
            add(label, [_pct(m) for m in x.mean(0)])
    rows = list(zip(*cols, strict=True))
    return (
        _table(header, rows, numeric)
        + '<p class="sub">Dose intensity is the dose taken per day over the whole cycle '
        "(rest days included). Posterior means. Starting the cycle and stopped are shares of "
        "all virtual patients; at target, held or reduced (in the cycle) and reduced (one "
        "level after it) are shares of the patients who started the cycle.</p>"
    )


_EFFECT_WORDS = {
    "new_trial": "new_trial: each virtual cohort draws its own between-trial effect, so the "
    "intervals predict a new trial",
    "typical": "typical: no between-trial effect, so the intervals describe a typical trial",
}


def _effect_words(v: Any) -> Any:
    return _EFFECT_WORDS.get(str(v), v) if v is not None else None


def _scenario_html(manifest: dict, ds: Any) -> str:
    cfg = manifest.get("config") or {}
    parts = []
    desc = cfg.get("description")
    if desc:
        parts.append(f"<p>{_e(desc)}</p>")
    items = [
        ("Mirrors", cfg.get("mirrors")),
        ("Schedule", manifest.get("regimen_text") or cfg.get("regimen")),
        ("Population", cfg.get("population")),
        ("Dose-modification rules", cfg.get("rules")),
        (
            "Between-trial effect",
            _effect_words(
                manifest.get("population_effect")
                or cfg.get("population_effect")
                or ds.attrs.get("population_effect")
            ),
        ),
        (
            "Virtual patients per posterior draw",
            manifest.get("n_patients") or ds.attrs.get("n_patients"),
        ),
        ("Posterior draws", manifest.get("n_draws") or ds.sizes.get("draw")),
        ("Seed", manifest.get("seed", ds.attrs.get("seed"))),
    ]
    parts.append(
        "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_value_html(v)}</dd>" for k, v in items) + "</dl>"
    )
    if not manifest:
        parts.append(
            '<p class="warn">manifest.json was not found: the scenario description and '
            "provenance are missing from this report.</p>"
        )
    return "\n".join(parts)


def _join(v: Any) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(str(x) for x in v)
    import pandas as pd

    return "" if v is None or (np.isscalar(v) and pd.isna(v)) or v is pd.NA else str(v)


def _evidence_html() -> str:
    """Trials and fitted figures from lenasim.evidence.table; a visible note if it cannot load."""
    try:
        import importlib

        evidence = importlib.import_module("lenasim.evidence.table")
        ev = evidence.load_evidence()
        arm_n = {k: a.n for k, a in evidence.load_arms().items()}
        fitted = ev[ev["in_fit"].astype(bool)] if "in_fit" in ev else ev
        fitted = fitted.assign(_arm=[_join(a) for a in fitted.get("arm_ids", [""] * len(fitted))])
        parts = [
            f"<p>The posterior rests on {len(fitted)} reported figures from "
            f"{fitted['trial'].nunique()} trials (the rows of the evidence table that enter the "
            f"fit; {len(ev) - len(fitted)} more rows are kept for checks only).</p>"
        ]
        summary = []
        for trial, sub in fitted.groupby("trial", sort=False):
            # Patients per arm from the arms table (a row's n may count cycles).
            ids = dict.fromkeys(a for row in sub.get("arm_ids", []) for a in row)
            summary.append(
                [
                    trial,
                    _join(sub["citation"].iloc[0]) if "citation" in sub else "",
                    "; ".join(f"{a} (n={arm_n.get(a, '?')})" for a in ids),
                    ", ".join(dict.fromkeys(sub["outcome"].astype(str))),
                ]
            )
        parts.append(
            _table(["Trial", "Publication", "Arms (patients)", "Outcomes fitted"], summary)
        )
        cols = [
            c
            for c in ("trial", "_arm", "outcome", "unit", "cycle_k", "events", "n", "source")
            if c in fitted
        ]
        labels = {"_arm": "arm", "cycle_k": "cycle"}
        rows = ([_join(x) for x in r] for r in fitted[cols].itertuples(index=False))
        parts.append(
            "<details><summary>Every fitted figure</summary>"
            + _table(
                [labels.get(c, c) for c in cols],
                rows,
                [c in ("events", "n", "cycle_k") for c in cols],
            )
            + "</details>"
        )
        return "\n".join(parts)
    except Exception as err:  # noqa: BLE001 - the report must still be written
        return (
            '<p class="warn">The evidence table could not be loaded, so the trials behind the '
            f"posterior are not listed here: {_e(type(err).__name__)}: {_e(err)}</p>"
        )


def _provenance_html(manifest: dict, ds: Any) -> str:
    parts = []
    post = manifest.get("posterior") or {}
    attrs = manifest.get("posterior_attrs") or {}
    converged = post.get("converged", attrs.get("converged"))
    if converged is not None and not _truthy(converged):
        parts.append(
            '<p class="warn">The posterior did NOT pass the convergence gate (R-hat, '
            "ESS, divergences); it was saved with --allow-unconverged. Treat every "
            "number in this report as provisional.</p>"
        )
    if post:
        parts.append("<h3>Posterior file</h3>")
        parts.append(_table(["Field", "Value"], ((k, _short(v)) for k, v in post.items())))
    if attrs:
        parts.append("<h3>Posterior diagnostics and attributes</h3>")
        parts.append(_table(["Attribute", "Value"], ((k, _short(v)) for k, v in attrs.items())))
    else:
        parts.append('<p class="note">No posterior diagnostics were recorded in the manifest.</p>')
    hashes = manifest.get("hashes") or {}
    if hashes:
        parts.append("<h3>Hashes</h3>")
        parts.append(_table(["Input", "Hash"], hashes.items()))
    versions = manifest.get("versions") or {}
    if versions:
        parts.append("<h3>Versions</h3>")
        parts.append(_table(["Package", "Version"], versions.items()))
    other = [
        ("Config file", manifest.get("config_file")),
        ("Seed", manifest.get("seed", ds.attrs.get("seed"))),
        ("Wall time (s)", manifest.get("wall_seconds")),
    ]
    parts.append(
        "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_value_html(v)}</dd>" for k, v in other) + "</dl>"
    )
    return "\n".join(parts)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(v)


def _short(v: Any, limit: int = 400) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= limit else s[:limit] + " ..."


def _pngs(folder: Path, names: Sequence[str], render: Any) -> list[tuple[str, bytes]]:
    """Embed the PNG files of ``names`` in ``folder``; render any missing one."""
    out = []
    for name in names:
        path = folder / name
        out.append((name, path.read_bytes() if path.is_file() else _fig_png(render(name))))
    return out


_ALT = {
    "per_cycle.png": "Probability of each event per cycle with 50% and 90% intervals",
    "cumulative.png": "Cumulative incidence of each event with 50% and 90% intervals",
    "dose.png": "Dose delivered per cycle: mean dose, intensity against plan, dose changes",
    "per_cycle_overlay.png": "Per-cycle probability of each event, scenarios overlaid",
    "cumulative_overlay.png": "Cumulative incidence of each event, scenarios overlaid",
    "differences.png": "Differences from the reference scenario with 90% intervals",
    "dose_overlay.png": "Dose delivered per cycle, scenarios overlaid",
}


# ---------------------------------------------------------------- public


def run_report(result_dir: Path | str, ds: Any = None) -> Path:
    """Write ``result_dir/report.html`` for one run and return its path.

    Reads draws.nc (unless ``ds``, the run's dataset as written there, is given) and
    manifest.json (missing optional keys are reported, not fatal); embeds
    per_cycle.png, cumulative.png and dose.png, drawing any that are missing.
    """
    from lenasim.core.errors import LenasimError
    from lenasim.outputs import figures as plots

    result_dir = Path(result_dir)
    draws = result_dir / "draws.nc"
    if not draws.is_file():
        raise LenasimError(f"{result_dir} has no draws.nc; cannot write its report")
    if ds is None:
        import xarray as xr

        ds = xr.load_dataset(draws)
    mpath = result_dir / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    name = manifest.get("name") or ds.attrs.get("scenario") or result_dir.name
    renderers = {
        "per_cycle.png": plots.plot_per_cycle,
        "cumulative.png": plots.plot_cumulative,
        "dose.png": plots.plot_dose,
    }
    pngs = _pngs(result_dir, plots.SCENARIO_PNGS, lambda n: renderers[n](ds))
    body = [
        f"<h1>{_e(name)}</h1>",
        '<p class="sub">Lenalidomide in CLL: simulated tumor flare, tumor lysis syndrome and '
        "grade 3-4 neutropenia per cycle, from a Bayesian model fitted to published trials.</p>",
        "<h2>Scenario</h2>",
        _scenario_html(manifest, ds),
        "<h2>Headline numbers</h2>",
        _headline_html(ds),
        "<h2>Plots</h2>",
        *(_img(png, _ALT.get(n, n)) for n, png in pngs),
        "<h2>Dose by cycle</h2>",
        _dose_html(ds),
        "<h2>Evidence the model rests on</h2>",
        _evidence_html(),
        "<h2>Posterior diagnostics and provenance</h2>",
        _provenance_html(manifest, ds),
    ]
    out = result_dir / "report.html"
    out.write_text(_page(f"lenasim: {name}", body), encoding="utf-8")
    return out


def _comparison_rows(df: pd.DataFrame) -> list[list[str]]:
    rows = []
    for name, sub in df.groupby("scenario", sort=False):
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        for event in [e for e in _EVENT_ORDER if e in set(sub["event"])] + sorted(
            set(sub.loc[sub["quantity"] != "dose", "event"]) - set(_EVENT_ORDER)
        ):
            for qty, cyc, label in (
                ("per_cycle", 1, "Cycle 1"),
                ("per_cycle", 2, "Cycle 2"),
                ("cumulative", last, f"By end of cycle {last}"),
            ):
                r = sub[(sub["quantity"] == qty) & (sub["event"] == event) & (sub["cycle"] == cyc)]
                if not len(r):
                    continue
                r = r.iloc[0]
                rows.append(
                    [
                        str(name),
                        _event_title(event),
                        label,
                        _interval(r.ref_mean, r.ref_q05, r.ref_q95),
                        _interval(r.scen_mean, r.scen_q05, r.scen_q95),
                        f"{100 * r.diff_mean:+.1f} ({100 * r.diff_q05:+.1f} to {100 * r.diff_q95:+.1f})",
                        "-"
                        if not np.isfinite(r.ratio_mean)
                        else f"{r.ratio_q50:.2f} ({r.ratio_q05:.2f} to {r.ratio_q95:.2f})",
                        f"{r.p_riskier:.2f}",
                        f"{100 * r.diff_mcse:.2f}",
                        "paired" if bool(r.paired) else "unpaired",
                    ]
                )
    return rows


def _dose_compare_html(dose: pd.DataFrame) -> str:
    metrics = [
        ("planned_intensity", "Planned (mg/day)", "{:.2f}"),
        ("dose_intensity_mean", "Delivered (mg/day)", "{:.2f}"),
        ("share_held_mean", "Held or reduced", None),
        ("share_reduced_mean", "Reduced after it", None),
        ("share_stopped_mean", "Stopped (of all)", None),
    ]
    metrics = [m for m in metrics if m[0] in dose]
    names = list(dict.fromkeys(dose["scenario"]))
    header = ["Cycle"] + [f"{lab}: {n}" for _, lab, _ in metrics for n in names]
    rows = []
    for cyc in sorted(dose["cycle"].unique()):
        row = [str(int(cyc))]
        for col, _, fmt in metrics:
            for n in names:
                v = dose.loc[(dose["scenario"] == n) & (dose["cycle"] == cyc), col]
                if not len(v) or not np.isfinite(v.iloc[0]):
                    row.append("-")
                else:
                    row.append(fmt.format(v.iloc[0]) if fmt else _pct(v.iloc[0]))
        rows.append(row)
    return _table(header, rows, [True] * len(header))


def compare_report(
    out_dir: Path | str,
    comparison: pd.DataFrame,
    *,
    runs: Sequence[Any],
    names: Sequence[str],
    notes: Sequence[str] = (),
    dose: pd.DataFrame | None = None,
    limits: pd.DataFrame | None = None,
) -> Path:
    """Write ``out_dir/report.html`` for a comparison and return its path.

    Parameters
    ----------
    out_dir : folder holding the comparison PNGs (drawn here if missing).
    comparison : the table from :func:`lenasim.outputs.comparison.compare_runs`.
    runs : the compared :class:`lenasim.outputs.comparison.Run` objects, reference first.
    names : display names of the runs, in the same order.
    notes : pairing and alignment notes (each shown; unpaired ones as warnings).
    dose : side-by-side dose table (compare's dose.csv), optional.
    """
    from lenasim.outputs import figures as plots

    out_dir = Path(out_dir)
    datasets = {n: r.ds for n, r in zip(names, runs, strict=True)}
    colors = plots.scenario_colors(list(names))
    renderers = {
        "per_cycle_overlay.png": lambda: plots.plot_per_cycle_overlay(datasets, colors),
        "cumulative_overlay.png": lambda: plots.plot_cumulative_overlay(datasets, colors),
        "differences.png": lambda: plots.plot_differences(comparison, colors),
        "dose_overlay.png": lambda: plots.plot_dose_overlay(datasets, colors),
    }
    pngs = _pngs(out_dir, plots.COMPARISON_PNGS, lambda n: renderers[n]())
    ref = names[0]
    body = [
        f"<h1>Comparison: {_e(' vs '.join(names[1:]))} against {_e(ref)}</h1>",
        '<p class="sub">Differences are scenario minus reference, in percentage points; '
        "intervals are 90% credible intervals; P(riskier) is the share of posterior draws in "
        "which the scenario has the higher probability.</p>",
    ]
    for note in notes:
        cls = "warn" if "unpaired" in note.lower() or "cannot" in note.lower() else "note"
        body.append(f'<p class="{cls}">{_e(note)}</p>')
    body += [
        "<h2>Main differences</h2>",
        _table(
            [
                "Scenario",
                "Event",
                "When",
                f"Reference ({ref})",
                "Scenario",
                "Difference (pp, 90% interval)",
                "Ratio (median, 90% interval)",
                "P(riskier)",
                "MCSE of difference (pp)",
                "Pairing",
            ],
            _comparison_rows(comparison),
            [False, False, False, True, True, True, True, True, True, False],
        ),
        '<p class="sub">The full table (every cycle, ratios, dose) is comparison.csv next to '
        "this file.</p>",
        "<h2>Plots</h2>",
        *(_img(png, _ALT.get(n, n)) for n, png in pngs),
    ]
    if dose is not None and len(dose):
        body += [
            "<h2>Dose delivered, side by side</h2>",
            _dose_compare_html(dose),
            '<p class="sub">Posterior means. Stopped is a share of all virtual patients; '
            "held or reduced (in the cycle) and reduced (one level after it) are shares of "
            "the patients who started the cycle.</p>",
        ]
    body.append("<h2>The scenarios</h2>")
    for name, run in zip(names, runs, strict=True):
        body += [
            f"<h3>{_e(name)}{' (reference)' if name == ref else ''}</h3>",
            f'<p class="sub mono">{_e(run.path)}</p>',
            _scenario_html(run.manifest, run.ds),
        ]
    body.append("<h2>Provenance</h2>")
    prov_rows = []
    for name, run in zip(names, runs, strict=True):
        h = run.manifest.get("hashes") or {}
        prov_rows.append(
            [
                name,
                h.get("posterior", "-"),
                h.get("posterior_index", "-"),
                h.get("config", "-"),
                h.get("evidence", "-"),
                run.manifest.get("seed", run.ds.attrs.get("seed", "-")),
                run.manifest.get("n_patients", run.ds.attrs.get("n_patients", "-")),
                run.manifest.get("population_effect", run.ds.attrs.get("population_effect", "-")),
            ]
        )
    body.append(
        _table(
            [
                "Scenario",
                "Posterior hash",
                "Posterior index hash",
                "Config hash",
                "Evidence hash",
                "Seed",
                "Patients",
                "Population effect",
            ],
            prov_rows,
        )
    )
    body += ["<h2>Evidence the model rests on</h2>", _evidence_html()]
    out = out_dir / "report.html"
    out.write_text(_page(f"lenasim comparison: {' vs '.join(names)}", body), encoding="utf-8")
    return out
