"""The Shiny app: a navbar of tabs over one set of :class:`~lenasim.explore.session.Settings`.

Tabs are entries of :data:`TABS` (a title, a UI function and a server function), so a
later tab (a patient tab, a design tab) is one more entry, not a change to the others.

The scenario tab: the form (generated from the schema, :mod:`lenasim.explore.form`), a
preview that is recomputed on every change (a reduced run in memory, its Monte Carlo SE
shown), a reference schedule for a paired comparison, "download config" and "full run"
(a background task that writes ``<results>/<name>/`` as ``lenasim run`` does). The
posterior tab shows the fitted model's plots (``models/<spec>/*.png``).

Each browser tab is its own Shiny session with its own values; full runs of all
sessions take turns (:mod:`lenasim.explore.pipeline_adapter`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from shiny import App, reactive, render, ui

from lenasim.core.errors import LenasimError
from lenasim.explore import form
from lenasim.explore.charts import dose_svg, risk_svg
from lenasim.explore.pipeline_adapter import full_run, preview
from lenasim.explore.session import Settings, preview_sections, reference_of
from lenasim.outputs.judgements.decision import format_limits

__all__ = ["TABS", "Tab", "make_app"]

_CSS = """
body { font-size: 14px; }
.fld { margin-bottom: .5rem; }
.fld .help { color: #666; font-size: 12px; margin-top: -.4rem; }
.fld .err, .err { color: #b00020; font-size: 12.5px; font-weight: 600; }
.panels { display: flex; flex-wrap: wrap; gap: 4px; }
table.num { border-collapse: collapse; font-size: 13px; margin: .3rem 0 .8rem; }
table.num td, table.num th { border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; }
pre { font-size: 12px; white-space: pre-wrap; background: #f7f7f7; padding: .4rem; }
.muted { color: #666; }
.fixed { font-family: monospace; font-size: 12px; word-break: break-all;
         margin-bottom: .5rem; }
"""


@dataclass(frozen=True)
class Tab:
    """One tab of the app: its title, its UI and its server logic (inputs, outputs,
    session, settings)."""

    title: str
    ui: Callable[[Settings], Any]
    server: Callable[[Any, Any, Any, Settings], None]


# ------------------------------------------------------------------ the scenario form


def _input(f: form.Field, value: Any):
    label = f"{f.label} ({f.unit})" if f.unit else f.label
    if f.kind in ("int", "float"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 25, not 25.0
        return ui.input_numeric(f.id, label, value, step=1 if f.kind == "int" else None)
    if f.kind in ("bool", "toggle"):
        return ui.input_checkbox(f.id, label, bool(value))
    if f.kind == "choice":
        choices = {c: c for c in f.choices}
        if f.optional:
            choices = {"": "(not set)"} | choices
        return ui.input_select(f.id, label, choices, selected=value or "")
    if f.kind == "multi":
        return ui.input_checkbox_group(f.id, label, list(f.choices), selected=list(value or ()),
                                       inline=True)  # fmt: skip
    if f.kind == "path":
        return ui.div(ui.tags.label(label), ui.div(str(value), class_="fixed"))
    return ui.input_text(f.id, label, value or "")


def _field_ui(f: form.Field, value: Any):
    return ui.div(
        _input(f, value),
        ui.div(f.help, class_="help", title=f.full_help),
        ui.output_ui(f"err_{f.id}"),
        class_="fld",
        id=f"fld_{f.id}",
    )


def form_ui(values: dict[str, Any]):
    """The form: one card per section; a block's keys hidden while its switch is off."""
    cards = []
    for sec, title in form.SECTION_TITLES.items():
        items = []
        for f in (f for f in form.FIELDS if f.section == sec):
            switch = next((s for s in form.FIELDS if s.kind == "toggle"
                           and f.path[: len(s.path)] == s.path and s.path != f.path), None)  # fmt: skip
            el = _field_ui(f, values.get(f.id))
            items.append(ui.panel_conditional(f"input.{switch.id}", el) if switch else el)
        if items:
            cards.append(ui.accordion_panel(title, *items, value=title))
    return ui.accordion(*cards, open=True, multiple=True, id="sections")


def scenario_ui(settings: Settings):
    values = settings.start_values()
    refs = {"": "(none)", "pinned": "pinned: the form as it was when pinned"}
    refs |= {k: k for k in settings.references}
    return ui.layout_sidebar(
        ui.sidebar(
            *[ui.div(note, class_="err") for note in form.not_in_form(settings.initial)],
            ui.div(ui.output_ui("errors_general")),
            form_ui(values),
            width=430,
        ),
        ui.div(
            ui.row(
                ui.column(4, ui.input_select("reference", "Reference schedule (paired)", refs)),
                ui.column(2, ui.input_action_button("pin", "Pin current as reference")),
                ui.column(2, ui.download_button("download", "Download config")),
                ui.column(2, ui.input_task_button("full_run", "Full run")),
                ui.column(2, ui.input_checkbox("overwrite", "replace an existing result")),
            ),
            ui.output_ui("run_status"),
            ui.output_ui("preview_status"),
            ui.output_ui("preview_out"),
        ),
    )


def scenario_server(input, output, session, settings: Settings) -> None:
    pinned = reactive.value(None)

    def one(fid: str) -> Any:
        try:
            return input[fid]()
        except Exception:  # an input not yet sent by the browser
            return None

    @reactive.calc
    def values() -> dict[str, Any]:
        got = {f.id: one(f.id) for f in form.FIELDS if f.kind != "path"}
        return settings.fix(got)

    @reactive.calc
    def checked() -> form.Checked:
        return form.validate(values())

    for f in form.FIELDS:
        _error_output(output, checked, f.id)

    @output(id="errors_general")
    @render.ui
    def _errors_general():
        msgs = checked().general
        return ui.div(*[ui.div(m, class_="err") for m in msgs]) if msgs else None

    @reactive.effect
    @reactive.event(input.pin)
    def _pin():
        sc = checked().scenario
        if sc is not None:
            pinned.set(sc)
            ui.update_select("reference", selected="pinned")

    @reactive.calc
    def reference():
        key = input.reference()
        sc = checked().scenario
        if not key or sc is None:
            return None
        ref = pinned() if key == "pinned" else settings.references.get(key)
        return None if ref is None else reference_of(sc, ref)

    @reactive.calc
    def result():
        sc = checked().scenario
        if sc is None:
            return None
        try:
            return preview(sc, draws=settings.preview_draws, patients=settings.preview_patients,
                           reference=reference())  # fmt: skip
        except LenasimError as err:
            return str(err)

    counter = reactive.value(0)

    @output(id="preview_status")
    @render.ui
    def _status():
        p = result()
        if p is None:
            c = checked()
            msgs = [m for ms in c.by_field.values() for m in ms] + c.general
            return ui.div(ui.div("The form has errors (each is shown at its field too): no "
                                 "preview."), *[ui.div(m) for m in msgs], class_="err",
                          id="preview-stamp")  # fmt: skip
        if isinstance(p, str):
            return ui.div(p, class_="err", id="preview-stamp")
        with reactive.isolate():
            counter.set(counter() + 1)
            n = counter()
        d, pts = p.ds.sizes["draw"], int(p.ds.attrs["n_patients"])
        return ui.p(
            f"Preview: {d} posterior draws x {pts} patients, {p.seconds:.2f} s. MCSE: the "
            "Monte Carlo SE of each mean; the full run uses the form's draws and patients.",
            class_="muted", id="preview-stamp", **{"data-stamp": str(n)},
        )  # fmt: skip

    @output(id="preview_out")
    @render.ui
    def _preview():
        p = result()
        if p is None or isinstance(p, str):
            return None
        s = preview_sections(p)
        ref = p.reference
        return ui.div(
            ui.h5("Headline"), ui.HTML(s["headline"]),
            ui.h5("Paired comparison with the reference (same random numbers)"),
            ui.HTML(s["paired"]),
            ui.h5("Risk in each cycle (patients starting it): mean, 50% and 90% bands"
                  + ("; reference dashed" if ref is not None else "")),
            ui.HTML(risk_svg(p.ds, "per_cycle", ref)),
            ui.h5("Cumulative incidence (at least one event by the end of each cycle)"),
            ui.HTML(risk_svg(p.ds, "cumulative", ref)),
            ui.h5("Dose delivered"), ui.HTML(dose_svg(p.ds, ref)),
            ui.h5("Risk limits (preview size: verdicts carry its MCSE)"), ui.HTML(s["limits"]),
            ui.HTML(s["bands"]),
            ui.h5("Mirrored trial"), ui.HTML(s["mirrored"]),
            ui.h5("Caveats"), ui.HTML(s["caveats"]),
        )  # fmt: skip

    def _yaml() -> str:
        config, _ = form.config_from_values(values())
        head = ("# Written by `python -m lenasim explore`; `python -m lenasim run` on this file\n"
                "# gives the numbers of the explorer's full run.\n")  # fmt: skip
        return form.to_yaml(config, head)

    @render.download_button(filename=lambda: f"{values().get('name') or 'scenario'}.yaml")
    def download():
        yield _yaml()

    @ui.bind_task_button(button_id="full_run")
    @reactive.extended_task
    async def run_task(sc, text, overwrite):
        return await asyncio.to_thread(_full_run, sc, text, overwrite)

    @reactive.effect
    @reactive.event(input.full_run)
    def _start():
        sc = checked().scenario
        if sc is not None:
            run_task.invoke(sc, _yaml(), bool(input.overwrite()))

    @output(id="run_status")
    @render.ui
    def _run_status():
        if run_task.status() == "initial":
            return None
        if run_task.status() == "running":
            return ui.p("Full run in progress...", class_="muted")
        if run_task.status() == "error":
            return ui.div(f"Full run failed: {run_task.error()}", class_="err", id="run-result")
        ok, text, verdicts = run_task.result()
        if not ok:
            return ui.div(text, class_="err", id="run-result")
        return ui.div(ui.p("Full run written to ", ui.code(text), " (report.html inside)."),
                      ui.tags.pre(verdicts), id="run-result", **{"data-folder": text})  # fmt: skip


def _full_run(sc, text: str, overwrite: bool) -> tuple[bool, str, str]:
    """(done, the folder or the message, the full run's verdicts as `run` prints them)."""

    try:
        out, res = full_run(sc, text, overwrite=overwrite)
    except LenasimError as err:
        return False, str(err), ""
    verdicts = format_limits(res.limits, sc.limits.max_probability) if len(res.limits) else ""
    return True, str(out), verdicts


def _error_output(output, checked, fid: str) -> None:
    @output(id=f"err_{fid}")
    @render.ui
    def _err():
        msgs = checked().by_field.get(fid, [])
        return ui.div(*[ui.div(m) for m in msgs], class_="err") if msgs else None


# ------------------------------------------------------------------ the posterior tab


def posterior_dir(settings: Settings) -> Path:
    """models/<spec stem>/: the fitted model's plots (``lenasim fit`` writes them)."""
    return settings.spec.with_suffix("")


def posterior_ui(settings: Settings):
    folder = posterior_dir(settings)
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not pngs:
        return ui.p(f"No posterior plots in {folder} (python -m lenasim fit writes them).")
    return ui.div(*[ui.div(ui.h5(p.stem.replace("_", " ")),
                           ui.img(src=f"posterior/{p.name}", alt=p.stem, style="max-width:100%"))
                    for p in pngs])  # fmt: skip


def _no_server(input, output, session, settings: Settings) -> None:
    return None


TABS: list[Tab] = [
    Tab("Scenario", scenario_ui, scenario_server),
    Tab("Posterior", posterior_ui, _no_server),
]


def make_app(settings: Settings, tabs: list[Tab] | None = None) -> App:
    """The app over ``settings``, with ``tabs`` (default :data:`TABS`)."""
    tabs = TABS if tabs is None else tabs
    page = ui.page_navbar(
        *[ui.nav_panel(t.title, t.ui(settings)) for t in tabs],
        title=f"lenasim explorer: {escape(settings.initial.name)}",
        header=ui.tags.style(_CSS),
        id="tabs",
    )

    def server(input, output, session):
        for t in tabs:
            t.server(input, output, session, settings)

    folder = posterior_dir(settings)
    static = {"/posterior": str(folder)} if folder.is_dir() else None
    return App(page, server, static_assets=static)
