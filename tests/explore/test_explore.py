"""The explorer's server logic without a browser (lenasim.explore): the form generated
from the schema, its messages against the CLI's, the preview against the model, the
paired reference, the full run and its config's round trip through `lenasim run`, two
sessions at once, and nothing written outside the results folder. The browser tests are
in tests/explore/test_explore_browser.py."""

from __future__ import annotations

import json
import threading
import typing
from pathlib import Path

import numpy as np
import pytest

from lenasim.core.errors import ConfigError
from lenasim.explore import form
from lenasim.explore.pipeline_adapter import CONFIG_NAME, full_run, preview
from lenasim.explore.session import Settings, headline_rows, paired_rows, reference_of
from lenasim.simulation.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.stem for p in (REPO / "configs").glob("*.yaml")
                   if not p.stem.startswith(("search_", "design_")))  # fmt: skip


def _settings(workdir: Path, name: str = "standard_25mg") -> Settings:
    """The settings `python -m lenasim explore configs/<name>.yaml` serves."""
    from argparse import Namespace

    from lenasim.commands.explore import build_settings

    args = Namespace(config=str(workdir / "configs" / f"{name}.yaml"), results=None,
                     preview_draws=None, preview_patients=None)  # fmt: skip
    return build_settings(args)


def test_settings_of_the_command(posterior_workdir):
    st = _settings(posterior_workdir)
    assert st.results == (posterior_workdir / "results").resolve()  # the config's output
    assert st.spec == (posterior_workdir / "models" / "default.yaml").resolve()
    assert set(st.references) == set(SCENARIOS)  # the search configs are not scenarios
    assert (st.preview_draws, st.preview_patients) == (200, 200)


def _leaf_paths(model, prefix=()) -> list[tuple[str, ...]]:
    """Every key of the schema a user can write (RiskLimits: per event, RiskLimit's keys)."""
    from pydantic import BaseModel

    from lenasim.core.limits import LIMIT_EVENTS, RiskLimit, RiskLimits

    out = []
    for name, info in model.model_fields.items():
        tp = info.annotation
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        if typing.get_origin(tp) is list:  # a list (of mappings too, renal_dosing): one input
            args = [tp]
        sub = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is RiskLimits:
            for ev in LIMIT_EVENTS:
                out += _leaf_paths(RiskLimit, (*prefix, name, ev))
            out.append((*prefix, name, "max_probability"))
        elif sub is not None:
            out += _leaf_paths(sub, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_form_has_every_key_of_the_schema_with_unit_and_help():
    paths = {f.path for f in form.FIELDS if f.kind != "toggle"}
    assert set(_leaf_paths(Scenario)) == paths
    for f in form.FIELDS:
        assert f.help.strip(), f"{f.dotted}: no help from the schema"
        assert "\n" not in f.help
        if f.kind in ("int", "float", "list"):
            assert f.unit, f"{f.dotted}: a number without a unit"
    start = form.BY_ID["regimen__start_mg"]
    assert (start.unit, start.help) == ("mg/day", "Starting dose (mg/day, 0.5-100)")


@pytest.mark.parametrize("name", SCENARIOS)
def test_form_values_give_back_the_shipped_scenario(name):
    sc = load_scenario(REPO / "configs" / f"{name}.yaml")
    checked = form.validate(form.values_from_config(sc))
    assert checked.by_field == {} and checked.general == []
    assert checked.scenario == sc


BAD = {
    "regimen__start_mg": -5,
    "population__patients": 2.5,
    "population__setting": "relapsd",
    "regimen__days_on": "1, 40",
    "rules__on_tls": "stop",
    "limits__tls__max": 2,
}


@pytest.mark.parametrize("fid", sorted(BAD))
def test_a_bad_value_gets_the_cli_message_at_its_field(tmp_path, fid):
    values = form.values_from_config(load_scenario(REPO / "configs" / "standard_25mg.yaml"))
    values[fid] = BAD[fid]
    checked = form.validate(values)
    assert checked.scenario is None
    config, _ = form.config_from_values(values)
    path = tmp_path / "x.yaml"
    path.write_text(form.to_yaml(config))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    cli = [line.removeprefix(f"{path}: ") for line in str(err.value).splitlines()]
    shown = [m for msgs in checked.by_field.values() for m in msgs] + checked.general
    assert sorted(shown) == sorted(cli)
    assert checked.by_field.get(fid), f"no message at {fid}: {checked.by_field}"


def test_a_list_that_is_not_a_list_is_named_at_its_field():
    values = form.values_from_config(load_scenario(REPO / "configs" / "slow_escalation.yaml"))
    values["regimen__escalation__levels_mg"] = "2.5, [5"
    checked = form.validate(values)
    assert checked.scenario is None
    assert checked.by_field["regimen__escalation__levels_mg"][0].startswith(
        "regimen.escalation.levels_mg: must be values separated by commas"
    )


def test_switching_a_block_off_leaves_it_out():
    values = form.values_from_config(load_scenario(REPO / "configs" / "slow_escalation.yaml"))
    values["regimen__escalation"] = False
    values["regimen__target_mg"] = None
    sc = form.validate(values).scenario
    assert sc is not None and sc.regimen.escalation is None
    values["limits__tls"] = values["limits__flare_grade3plus"] = False
    assert form.validate(values).scenario.limits.items() == []


def test_the_app_fixes_the_paths_it_writes_to(posterior_workdir):
    st = _settings(posterior_workdir)
    values = st.start_values()
    values["output"], values["posterior__spec"] = "/etc", "/tmp/other.yaml"  # from a browser
    sc = form.validate(st.fix(values)).scenario
    assert sc.output == st.results and sc.posterior.spec == st.spec


def _cycle1_eta(sc: Scenario, draws, event: str) -> np.ndarray:
    """The model's linear predictor of cycle 1 for a typical patient of ``sc``, per draw:
    the oracle of the preview's direction (computed from the hazard, not the engine)."""
    from lenasim.core.regimen import nominal_features
    from lenasim.core.vocabulary import covariate_features

    feats = {k: v[:1] for k, v in nominal_features(sc.regimen.expand(), 1).items()}
    pop = sc.population
    feats |= covariate_features(pop.setting, pop.partner_classes, pop.steroid_prophylaxis,
                                np.zeros(1), feats["first"])  # fmt: skip
    return draws.eta(event, feats)[:, 0]


def test_preview_moves_cycle1_tls_the_way_the_model_says(posterior_workdir):
    """Starting dose 25 mg -> 5 mg: on common random numbers the cycle-1 TLS risk of each
    draw moves as the sign of that draw's change in the linear predictor."""
    from lenasim.explore.pipeline_adapter import load_posterior
    from lenasim.simulation.streams import select_draws

    st = _settings(posterior_workdir)
    high = st.initial
    low = high.model_copy(update={"regimen": high.regimen.model_copy(update={"start_mg": 5.0})})
    p_hi, p_lo = (preview(sc, draws=60, patients=100) for sc in (high, low))
    post = load_posterior(st.spec)
    index = select_draws(post.draws.n_draws, 60, high.seed)
    d_eta = _cycle1_eta(high, post.draws.take(index), "tls") - _cycle1_eta(
        low, post.draws.take(index), "tls")  # fmt: skip
    d_sim = (p_hi.ds["per_cycle"].sel(event="tls", cycle=1).values
             - p_lo.ds["per_cycle"].sel(event="tls", cycle=1).values)  # fmt: skip
    assert np.all(d_eta != 0)
    np.testing.assert_array_equal(np.sign(d_sim), np.sign(d_eta))
    rows = {r["event"]: r for r in headline_rows(p_hi)}
    mcse = rows["tls"]["cycle1"]["mcse"]
    sd = np.std(p_hi.ds["per_cycle"].sel(event="tls", cycle=1).values, ddof=1)
    assert mcse == pytest.approx(sd / np.sqrt(60))


def test_reference_is_paired_on_the_same_random_numbers(posterior_workdir):
    st = _settings(posterior_workdir)
    sc = st.initial
    same = preview(sc, draws=40, patients=80, reference=reference_of(sc, sc))
    for r in paired_rows(same):  # the same schedule on the same numbers: no difference at all
        assert r["mean"] == 0 and r["q05"] == 0 and r["q95"] == 0
    slow = load_scenario(posterior_workdir / "configs" / "slow_escalation.yaml")
    other = preview(sc, draws=40, patients=80, reference=reference_of(sc, slow))
    ref_alone = preview(reference_of(sc, slow), draws=40, patients=80)
    np.testing.assert_array_equal(other.reference["per_cycle"].values,
                                  ref_alone.ds["per_cycle"].values)  # fmt: skip
    # 25 mg against 2.5 mg: the share of draws in which the current schedule is riskier is
    # the share in which the model's cycle-1 predictor is higher (common random numbers).
    from lenasim.explore.pipeline_adapter import load_posterior
    from lenasim.simulation.streams import select_draws

    post = load_posterior(st.spec)
    taken = post.draws.take(select_draws(post.draws.n_draws, 40, sc.seed))
    d_eta = _cycle1_eta(sc, taken, "tls") - _cycle1_eta(reference_of(sc, slow), taken, "tls")
    tls1 = next(r for r in paired_rows(other) if r["event"] == "tls" and r["quantity"] == "cycle 1")
    assert 0 < np.mean(d_eta > 0) < 1  # the synthetic posterior is not monotone: both signs
    assert tls1["p_higher"] == np.mean(d_eta > 0)


def _small(sc: Scenario, name: str | None = None, **regimen) -> Scenario:
    return sc.model_copy(update={
        "name": name or sc.name,
        "population": sc.population.model_copy(update={"patients": 40}),
        "posterior": sc.posterior.model_copy(update={"draws": 20}),
        "regimen": sc.regimen.model_copy(update=regimen),
    })  # fmt: skip


def _yaml(sc: Scenario) -> str:
    config, problems = form.config_from_values(form.values_from_config(sc))
    assert not problems
    return form.to_yaml(config)


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_full_run_writes_the_run_folder_and_its_config_runs_to_the_same_numbers(
    posterior_workdir, monkeypatch
):
    from lenasim.cli import main

    _no_figures(monkeypatch)  # the folder's files and the CSV bytes are checked, no figure
    st = _settings(posterior_workdir)
    sc = _small(st.initial)
    before = _tree(posterior_workdir)
    preview(sc, draws=20, patients=40, reference=reference_of(sc, sc))  # writes nothing
    assert _tree(posterior_workdir) == before
    out, _ = full_run(sc, _yaml(sc), overwrite=False)
    assert out == st.results / sc.name
    for f in ("report.html", "per_cycle.csv", "manifest.json", "draws.nc", CONFIG_NAME):
        assert (out / f).is_file(), f
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_file"] == str(out / CONFIG_NAME)
    import hashlib

    assert (
        manifest["hashes"]["config"] == hashlib.sha256((out / CONFIG_NAME).read_bytes()).hexdigest()
    )
    after = _tree(posterior_workdir)
    changed = {k for k in after if before.get(k) != after[k]} | (before.keys() - after.keys())
    assert changed and all(k.startswith("results") for k in changed), sorted(changed)
    # The round trip: the config the app wrote (and offers as download), run by the CLI.
    again = posterior_workdir / "again"
    argv = ["run", str(out / CONFIG_NAME), "--results", str(again), "--quiet", "--no-plots"]
    assert main(argv) == 0
    for f in ("per_cycle.csv", "cumulative.csv", "dose.csv", "limits.csv"):
        assert (again / sc.name / f).read_bytes() == (out / f).read_bytes(), f


def _no_figures(monkeypatch) -> None:
    """A full run's report.html written without drawing or embedding its PNGs (the tests
    that use this check files and numbers; drawing was most of their CPU)."""
    from lenasim.outputs.figures import run as run_figures
    from lenasim.outputs.report import run as run_page

    monkeypatch.setattr(run_figures, "scenario_plots", lambda *a, **k: None)
    monkeypatch.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
    monkeypatch.setattr(run_page, "fill_images", lambda html, *a, **k: html)


def test_full_run_refuses_an_existing_result_unless_told(posterior_workdir, monkeypatch):
    _no_figures(monkeypatch)  # what is checked is the refusal and the replacement
    st = _settings(posterior_workdir)
    sc = _small(st.initial)
    out, _ = full_run(sc, _yaml(sc), overwrite=False)
    stamp = (out / "manifest.json").read_bytes()
    folder = out.stat().st_ino
    with pytest.raises(ConfigError, match="already exists"):
        full_run(sc, _yaml(sc), overwrite=False)
    assert (out / "manifest.json").read_bytes() == stamp and out.stat().st_ino == folder
    full_run(sc, _yaml(sc), overwrite=True)
    # replaced by a new folder, renamed into place while the old one still existed (so it
    # has another inode); not told by the manifest's bytes: its time has whole seconds and
    # its wall times milliseconds, and two tiny runs wrote the same bytes (1 fast-suite
    # run in ~10, 2026-12-07)
    assert out.stat().st_ino != folder and (out / "manifest.json").is_file()


@pytest.mark.slow  # end to end: two app sessions running (issue 22.12)
def test_two_sessions_running_at_once_do_not_mix(posterior_workdir):
    """Two tabs: different scenarios at once each get their own folder; the same name at
    once gives one result and one refusal, never a mixture."""
    st = _settings(posterior_workdir)
    a = _small(st.initial, "tab_a", start_mg=25.0)
    b = _small(st.initial, "tab_b", start_mg=5.0)
    got: dict[str, object] = {}

    def go(sc, key):
        try:
            got[key] = full_run(sc, _yaml(sc), overwrite=False)[0]
        except ConfigError as err:
            got[key] = err

    threads = [threading.Thread(target=go, args=(sc, k)) for sc, k in ((a, "a"), (b, "b"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for sc, key in ((a, "a"), (b, "b")):
        assert got[key] == st.results / sc.name
        back = load_scenario(st.results / sc.name / CONFIG_NAME)
        assert back.regimen.start_mg == sc.regimen.start_mg
        man = json.loads((st.results / sc.name / "manifest.json").read_text())
        assert man["config"]["regimen"]["start_mg"] == sc.regimen.start_mg
    same = [_small(st.initial, "tab_same", start_mg=s) for s in (25.0, 5.0)]
    threads = [threading.Thread(target=go, args=(sc, f"s{i}")) for i, sc in enumerate(same)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ok = [k for k in ("s0", "s1") if isinstance(got[k], Path)]
    assert len(ok) == 1 and isinstance(got[{"s0": "s1", "s1": "s0"}[ok[0]]], ConfigError)
    winner = same[int(ok[0][1])]
    back = load_scenario(st.results / "tab_same" / CONFIG_NAME)
    man = json.loads((st.results / "tab_same" / "manifest.json").read_text())
    assert back.regimen.start_mg == man["config"]["regimen"]["start_mg"] == winner.regimen.start_mg
    assert not list(st.results.glob(".*")), "temporary files left in the results folder"


# ------------------------------------------------------------------ the command and the app


def test_other_commands_do_not_import_shiny():
    import subprocess
    import sys

    code = ("import sys; from lenasim.cli import build_parser; build_parser(); "
            "import lenasim.commands.run, lenasim.commands.search, lenasim.commands.compare; "
            "print(sorted(m for m in ('shiny', 'uvicorn', 'playwright', 'lenasim.explore') "
            "if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _explore(capsys, *argv) -> tuple[int, str]:
    from lenasim.cli import main

    code = main(["explore", *map(str, argv)])
    return code, capsys.readouterr().err


def test_explore_refuses_a_bad_config_with_the_run_message(posterior_workdir, capsys):
    bad = posterior_workdir / "configs" / "bad.yaml"
    text = (posterior_workdir / "configs" / "standard_25mg.yaml").read_text()
    bad.write_text(text.replace("start_mg: 25", "start_mg: -5"))
    code, err = _explore(capsys, bad, "--port", 0)
    assert code == 2
    assert (
        err.strip() == f"lenasim explore: error: {bad}: regimen.start_mg: must be >= 0.5 (got -5)"
    )


def test_explore_refuses_a_port_in_use(posterior_workdir, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, err = _explore(capsys, posterior_workdir / "configs" / "standard_25mg.yaml",
                             "--port", port)  # fmt: skip
    assert code == 2
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in err
    assert "--port 0 picks a free one" in err


def test_explore_without_shiny_says_how_to_install_it(posterior_workdir, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "shiny", None)  # import shiny -> ImportError
    code, err = _explore(capsys, posterior_workdir / "configs" / "standard_25mg.yaml")
    assert code == 2 and "pip install 'lenasim[explore]'" in err


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app of the standard_25mg config served by uvicorn in a thread (with a stand-in
    posterior plot), in a folder filled as ``posterior_workdir``'s; yields its URL and
    settings. One server for the module's tests that use it (each opens its own page or
    Shiny session; the app's start took ~0.25 s of CPU per test; issue 22.12)."""
    import socket
    import time

    import uvicorn

    from conftest import make_posterior_workdir
    from lenasim.explore.app import make_app

    workdir = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as mp:
        make_posterior_workdir(workdir, mp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        st = _settings(workdir)
        plots = st.spec.with_suffix("")  # models/default/: the posterior_workdir has no plots
        plots.mkdir(exist_ok=True)
        (plots / "dose_response.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        server = uvicorn.Server(uvicorn.Config(make_app(st), host="127.0.0.1", port=port,
                                              log_level="warning"))  # fmt: skip
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", st
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def test_the_page_holds_every_input_with_its_help(served):
    import urllib.request

    url, st = served
    html = urllib.request.urlopen(url + "/").read().decode()
    from html import escape

    for f in form.FIELDS:
        if f.kind != "path":
            assert f'id="{f.id}"' in html, f.id
        assert escape(f.help, quote=False) in html or escape(f.help) in html, f.help
        assert f'id="err_{f.id}"' in html
    assert "Starting dose (mg/day)" in html
    assert 'src="posterior/dose_response.png"' in html  # the posterior tab


def test_the_posterior_tab_serves_the_model_plots(served):
    import urllib.request

    url, st = served
    png = st.spec.with_suffix("") / "dose_response.png"
    assert urllib.request.urlopen(url + "/posterior/dose_response.png").read() == png.read_bytes()


def test_full_run_refuses_a_cohort_too_large_for_the_memory(posterior_workdir, monkeypatch):
    import lenasim.pipeline.memory as memory

    st = _settings(posterior_workdir)
    big = st.initial.population.model_copy(update={"patients": 500_000_000})
    sc = _small(st.initial).model_copy(update={"population": big})
    monkeypatch.setattr(memory, "available_memory", lambda: 2**26)  # 64 MB left
    with pytest.raises(
        ConfigError, match=r"^full run: the simulation needs about .* population.patients"
    ):
        full_run(sc, _yaml(sc), overwrite=False)
    assert not st.results.exists()


def test_a_limit_the_form_cannot_hold_is_said(posterior_workdir):
    sc = load_scenario(posterior_workdir / "configs" / "standard_25mg.yaml")
    two = sc.limits.model_validate({"tls": [{"cycle": 1, "max": 0.02}, {"cycle": 2, "max": 0.01}]})
    notes = form.not_in_form(sc.model_copy(update={"limits": two}))
    assert notes == ["limits.tls: the config states 2 limits; the form holds the first only "
                     "(the preview, the download and the full run use that one)"]  # fmt: skip
    assert form.not_in_form(sc) == []


class _Client:
    """A Shiny session without a browser: Shiny's websocket protocol (init with the
    inputs, then updates), collecting the outputs the server sends."""

    OUTPUTS = ("preview_out", "preview_status", "err_regimen__start_mg")
    # (a real browser also reports which outputs are visible; these are)

    def __init__(self, ws):
        self.ws, self.values = ws, {}

    async def send(self, method: str, data: dict) -> None:
        await self.ws.send(json.dumps({"method": method, "data": data}))

    async def until(self, output: str, test=lambda html: True, timeout: float = 60) -> str:
        """Read messages until ``output`` has a value that passes ``test``; return its HTML."""
        import asyncio
        import time

        end = time.monotonic() + timeout
        while True:
            got = self.values.get(output)
            if got is not None and test(got):
                return got
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), end - time.monotonic()))
            for k, v in (msg.get("values") or {}).items():
                self.values[k] = (v or {}).get("html", "") if isinstance(v, dict) else (v or "")


def _c1_tls(html: str) -> float:
    import re

    return float(re.search(r"id='c1-tls' data-value='([^']+)'", html).group(1))


def test_the_server_reacts_to_the_form_without_a_browser(served):
    """The app's reactive server, driven over Shiny's own protocol: the preview appears,
    a lower starting dose redraws it with the cycle-1 TLS risk the preview function gives
    for that scenario, and a bad dose puts the CLI's message at the field."""
    import asyncio

    import websockets

    url, st = served
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in st.start_values().items()}
    values |= {"reference": "", "overwrite": False}
    values |= {f".clientdata_output_{o}_hidden": False for o in _Client.OUTPUTS}
    low = st.initial.model_copy(
        update={"regimen": st.initial.regimen.model_copy(update={"start_mg": 5.0})}
    )
    want = {
        sc.regimen.start_mg: headline_rows(preview(sc, draws=200, patients=200))
        for sc in (st.initial, low)
    }

    async def session():
        async with websockets.connect(url.replace("http", "ws") + "/websocket/") as ws:
            c = _Client(ws)
            await c.send("init", values)
            first = _c1_tls(await c.until("preview_out", lambda h: "c1-tls" in h))
            c.values.clear()
            await c.send("update", {"regimen__start_mg": 5})
            second = _c1_tls(await c.until("preview_out", lambda h: "c1-tls" in h))
            await c.send("update", {"regimen__start_mg": -5})
            err = await c.until("err_regimen__start_mg", lambda h: "must be" in h)
            status = await c.until("preview_status", lambda h: "errors" in h)
            # Pin the form at 5 mg as the reference, then compare 25 mg with it.
            await c.send("update", {"regimen__start_mg": 5})
            await c.until("preview_out", lambda h: "c1-tls" in h)
            await c.send("update", {"pin": 1, "reference": "pinned"})
            c.values.clear()
            await c.send("update", {"regimen__start_mg": 25})
            paired = await c.until("preview_out", lambda h: "id='paired'" in h)
            return first, second, err, status, paired

    first, second, err, status, paired = asyncio.run(session())
    assert "No reference schedule chosen" not in paired and "P(current higher)" in paired
    tls = {mg: next(r for r in rows if r["event"] == "tls") for mg, rows in want.items()}
    assert first == pytest.approx(tls[25.0]["cycle1"]["mean"], rel=1e-5)
    assert second == pytest.approx(tls[5.0]["cycle1"]["mean"], rel=1e-5)
    assert "regimen.start_mg: must be &gt;= 0.5 (got -5)" in err or (
        "regimen.start_mg: must be >= 0.5 (got -5)" in err
    )
    assert "no preview" in status


def test_the_preview_gives_the_mcse_of_each_verdict(posterior_workdir):
    from lenasim.explore.session import limits_mcse

    st = _settings(posterior_workdir)
    p = preview(st.initial, draws=50, patients=50)
    text = limits_mcse(p)
    for r in p.limits.to_dict("records"):
        se = np.sqrt(r["p_exceed"] * (1 - r["p_exceed"]) / 50)
        assert f"{r['limit']}: {se:.3f}" in text
        flagged = "other verdict:" in text and r["limit"] in text.split("other verdict:")[1]
        assert flagged == (abs(r["p_exceed"] - 0.25) <= 2 * se)


def test_explore_refuses_results_inside_the_package(posterior_workdir, capsys):
    import lenasim

    inside = Path(lenasim.__file__).parent / "results"
    code, err = _explore(capsys, posterior_workdir / "configs" / "standard_25mg.yaml",
                         "--results", inside)  # fmt: skip
    assert code == 2 and "--results:" in err and "inside the installed lenasim package" in err
    assert not inside.exists()
