"""lenasim benchmarks: the engine against the random-number floor and the reference loop,
`run` end to end, peak memory at 100,000 patients, scaling, and (``--fit``) the samplers.

    python benchmarks/run.py                 # everything but the fit (~1-2 min)
    python benchmarks/run.py --quick         # floor and reference on small cases, run end to
                                             # end 3 times (~30 s; .ci/run runs it)
    python benchmarks/run.py --only fit      # the fit set-ups only (tens of minutes)
    python benchmarks/run.py --only floor,e2e

Run from the repository root (paths are relative to it). Every measurement prints the
1-minute load average next to it: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
CONFIG = ROOT / "configs" / "slow_escalation.yaml"
SECTIONS = ("floor", "reference", "e2e", "memory", "scaling")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def setup(n_draws: int):
    from lenasim.model.posterior import load_posterior
    from lenasim.simulation.scenario import load_scenario
    from lenasim.simulation.streams import select_draws

    sc = load_scenario(CONFIG)
    post = load_posterior(ROOT / "models" / "default.nc", check=False)
    idx = select_draws(post.draws.n_draws, n_draws, sc.seed)
    return sc, post.draws.take(idx), idx


def engine_time(sc, draws, idx, *, patients=None, threads=1, repeat=2) -> tuple[float, float]:
    """Best (wall, cpu) seconds of simulate_scenario over ``repeat`` runs."""
    from lenasim.simulation.engine import simulate_scenario

    best = (np.inf, np.inf)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        simulate_scenario(sc, draws, posterior_index=idx, n_patients=patients, threads=threads)
        best = min(best, (time.perf_counter() - w, time.process_time() - c))
    return best


def floor_time(n_draws: int, n: int, n_cyc: int, repeat=2) -> tuple[float, float, int, int]:
    """The same numbers of normals and uniforms as the engine, from one PCG64 Generator,
    in blocks into reused buffers (no seeding per draw). Returns (wall, cpu, normals,
    uniforms)."""
    from lenasim.simulation.streams import Layout

    lay = Layout.of()  # shipped: 3 events, 1 patient covariate, 4 output events
    n_ev = len(lay.events)
    normals = n_draws * (n_ev + n_ev * n)
    uniforms = n_draws * (len(lay.covariates) * n + lay.n_outputs * n * n_cyc)
    block = 1 << 18
    buf = np.empty(block)
    gen = np.random.Generator(np.random.PCG64(1))
    best = (np.inf, np.inf)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        for total, fill in ((normals, gen.standard_normal), (uniforms, gen.random)):
            left = total
            while left > 0:
                k = min(block, left)
                fill(out=buf[:k])
                left -= k
        best = min(best, (time.perf_counter() - w, time.process_time() - c))
    return (*best, normals, uniforms)


def section_floor(args, rows):
    """Engine (one thread) and floor timed alternately, ``pairs`` times: each pair ran
    under the same load, so the median of the paired ratios is robust to a shared
    machine; the ratio of the best times is printed too."""
    n_draws = 100 if args.quick else 1000
    sc, draws, idx = setup(n_draws)
    n, c = sc.population.patients, sc.regimen.cycles
    from lenasim.simulation.engine import simulate_scenario

    simulate_scenario(sc, draws.take(slice(0, 2)), posterior_index=idx[:2])  # compile/load
    pairs = 3 if args.quick else 7
    eng, flo = [], []
    for _ in range(pairs):
        eng.append(engine_time(sc, draws, idx, threads=1, repeat=1))
        fw, fc, n_norm, n_unif = floor_time(n_draws, n, c, repeat=1)
        flo.append((fw, fc))
    eng, flo = np.array(eng), np.array(flo)  # (pairs, [wall, cpu])
    ratio = np.median(eng / flo, axis=0)
    best = eng.min(axis=0) / flo.min(axis=0)
    tw, _ = engine_time(sc, draws, idx, threads=None, repeat=args.repeat)
    rows["floor"] = dict(engine_wall_1thread=eng[:, 0].min(), engine_cpu_1thread=eng[:, 1].min(),
                         floor_wall=flo[:, 0].min(), floor_cpu=flo[:, 1].min(),
                         ratio_median_wall=ratio[0], ratio_median_cpu=ratio[1],
                         ratio_best_wall=best[0], pairs=pairs, draws=n_draws, normals=n_norm, uniforms=n_unif,
                         engine_wall_threads=tw, threads=os.cpu_count(), load=load())  # fmt: skip
    print(
        f"engine {n} patients x {n_draws} draws x {c} cycles (rules on), 1 thread: best "
        f"{eng[:, 0].min():.3f} s wall, {eng[:, 1].min():.3f} s CPU; all cores: {tw:.3f} s wall"
    )
    print(
        f"floor: {n_norm:,} normals + {n_unif:,} uniforms, one PCG64 Generator: best "
        f"{flo[:, 0].min():.3f} s wall, {flo[:, 1].min():.3f} s CPU   [load {load()}]"
    )
    print(
        f"  ratio engine/floor, median of {pairs} alternating pairs: {ratio[0]:.2f} (wall), "
        f"{ratio[1]:.2f} (CPU); of the best times: {best[0]:.2f}; all cores vs floor: "
        f"{tw / flo[:, 0].min():.2f}   target <= 1.3 (issue 20)"
    )


def section_reference(args, rows):
    from reference_loop import simulate_reference

    n_draws = rows.get("floor", {}).get("draws", 100 if args.quick else 1000)
    sc, draws, idx = setup(n_draws)
    s, n = (2, 25) if args.quick else (3, 40)
    c = sc.regimen.cycles
    t = time.perf_counter()
    simulate_reference(sc.regimen.expand(), sc.population, sc.rules, draws.take(slice(0, s)),
                       n_patients=n, seed=sc.seed)  # fmt: skip
    ref = (time.perf_counter() - t) / (s * n * c)
    if "floor" in rows:
        eng = rows["floor"]["engine_wall_1thread"] / (n_draws * sc.population.patients * c)
    else:
        eng = engine_time(sc, draws, idx, threads=1, repeat=1)[0] / (
            n_draws * sc.population.patients * c
        )
    rows["reference"] = dict(ref_s_per_cell=ref, engine_s_per_cell=eng, ref_case=[s, n, c],
                             load=load())  # fmt: skip
    print(
        f"reference loop on {s} draws x {n} patients x {c} cycles: {ref * 1e6:.1f} us per "
        f"patient-draw-cycle; engine (1 thread, default sizes): {eng * 1e9:.1f} ns "
        f"-> engine {ref / eng:,.0f}x faster (scaled per patient-draw-cycle)   "
        f"[load {load()}]   target >= 100"
    )


NOT_IMPORTED = (
    "import sys, runpy; sys.argv = ['lenasim'] + sys.argv[1:]\n"
    "from lenasim.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "heavy = ('pymc', 'pytensor', 'dask', 'matplotlib', 'scipy', 'xarray', 'pandas', 'pyarrow')\n"
    "got = sorted(h for h in heavy if any(m == h or m.startswith(h + '.') for m in sys.modules))\n"
    "print('IMPORTED', ','.join(got) or '-')\n"
)
E2E_TARGET_S = 1.0  # issue 22.11: `run` with plots and report, idle machine, median of 7


def section_e2e(args, rows):
    """``run_end_to_end``: `python -m lenasim run configs/slow_escalation.yaml` as a user
    of an installed package runs it (a new process each time: imports, posterior,
    simulation, mirrored trial, tables, draws.nc, figures, report; lenasim's bytecode
    compiled beforehand, :func:`compile_lenasim`, as pip compiles a wheel's at install),
    median wall of 7 (3 with --quick), with and without plots, beside the engine alone on
    the same scenario in the same process (the reference: what no end-to-end run can
    beat), and the ratio of the two. One more line: with plots, lenasim compiled from
    source in every process (no bytecode, PYTHONDONTWRITEBYTECODE=1: a checkout on a
    machine that sets it, as this sandbox does)."""
    from lenasim.core.errors import PosteriorError
    from lenasim.model.posterior import load_posterior

    try:
        load_posterior(ROOT / "models" / "default.nc", ROOT / "models" / "default.yaml")
    except PosteriorError as err:
        print(f"e2e skipped: {err} (a run would fit first)")
        return
    runs = 3 if args.quick else 7
    sc, draws, idx = setup(sc_draws(CONFIG))
    from lenasim.simulation.population import simulate_scenario

    engine = []
    for _ in range(runs):  # the engine as `run` calls it (default threads)
        w = time.perf_counter()
        simulate_scenario(sc, draws, posterior_index=idx)
        engine.append(time.perf_counter() - w)
    out = {"engine_s": float(np.median(engine)), "engine_all": engine}
    print(f"engine alone ({sc.population.patients} patients x {len(idx)} draws x "
          f"{sc.regimen.cycles} cycles): median {np.median(engine):.3f} s wall of {runs}   "
          f"[load {load()}]")  # fmt: skip
    package, n_compiled = compile_lenasim()
    print(f"lenasim's bytecode compiled beforehand (compileall, {n_compiled} modules into "
          f"the __pycache__ folders of {package}), as pip does at install; the runs read "
          "it whatever PYTHONDONTWRITEBYTECODE says")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "lenasim", "run", str(CONFIG.relative_to(ROOT)),
                "--results", tmp, "--overwrite", "--quiet"]  # fmt: skip
        cases = [("no_plots", ["--no-plots"], None), ("plots", [], None)]
        if package.is_relative_to(ROOT):  # a checkout: its bytecode can be set aside
            cases.append(("plots_source", [], package))
        for label, extra, uncompiled in cases:
            env = dict(os.environ)
            if uncompiled is not None:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                set_bytecode_aside(uncompiled)
            try:
                walls, cpus = e2e_runs(base + extra, env, runs)
            finally:
                if uncompiled is not None:
                    compile_lenasim()
            med = float(np.median(walls))
            out[label] = med
            out[label + "_all"] = walls
            out[label + "_cpu"] = float(np.median(cpus))
            out[label + "_ratio_to_engine"] = med / out["engine_s"]
            target = f"target <= {E2E_TARGET_S:.1f} s idle" if label == "plots" else ""
            name = f"run_end_to_end {label:8s}"
            if uncompiled is not None:
                target = "(lenasim's modules compiled from source in each process)"
                name = "run_without_bytecode  "
            print(
                f"{name} `python -m lenasim run {CONFIG.name} "
                f"{' '.join(extra)}` (whole process): median {med:.2f} s wall of {runs} "
                f"(best {min(walls):.2f}, worst {max(walls):.2f}) = "
                f"{med / out['engine_s']:.1f} x the engine; CPU (user + sys, with the plot "
                f"child) median {out[label + '_cpu']:.2f} s   [load {load()}]   {target}"
            )
        cmd = [sys.executable, "-c", NOT_IMPORTED, "run", str(CONFIG.relative_to(ROOT)),
               "--results", tmp, "--overwrite", "--quiet"]  # fmt: skip
        res = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
        got = res.stdout.split("IMPORTED")[-1].split()[0]
        out["imported"] = got
        print(f"heavy libraries imported by `run` (with plots; the figures are drawn by a "
              f"child process): {got}   target: - (none: the tables are written by "
              "lenasim.outputs.tables.frame, the mirrored trial reads the evidence without "
              "pandas)")  # fmt: skip
    out["load"] = load()
    rows["e2e"] = out


def e2e_runs(cmd: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + sys of the process and of the plot child, which it
    waits for before it exits) of ``runs`` runs of ``cmd``, after one not counted (files
    in the OS cache, the results folder there to overwrite)."""
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
    walls, cpus = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    return walls, cpus


def compile_lenasim() -> tuple[Path, int]:
    """Byte-compile the lenasim package the runs import (this process's: the same
    PYTHONPATH) into its ``__pycache__`` folders (ignored by git), as pip does for an
    installed wheel and as an editable install's first run does where Python may write
    bytecode. Returns the package folder and its number of modules."""
    import compileall

    import lenasim

    package = Path(lenasim.__file__).resolve().parent
    compileall.compile_dir(package, quiet=1)
    return package, sum(1 for _ in package.rglob("*.py"))


def set_bytecode_aside(package: Path) -> None:
    """Remove this interpreter's bytecode of ``package`` (a checkout's; the runs after this
    compile it from source, and :func:`compile_lenasim` writes it again)."""
    import importlib.util

    for source in package.rglob("*.py"):
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)


def sc_draws(config: Path) -> int:
    from lenasim.simulation.scenario import load_scenario

    return load_scenario(config).posterior.draws


MEM = (
    "import resource, sys, time, json\n"
    "sys.path.insert(0, {bench!r})\n"
    "from run import setup\n"
    "from lenasim.simulation.engine import simulate_scenario\n"
    "d = int(sys.argv[1]); t = int(sys.argv[2])\n"
    "sc, draws, idx = setup(d)\n"
    "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "w = time.perf_counter()\n"
    "simulate_scenario(sc, draws, posterior_index=idx, n_patients=100_000, threads=t)\n"
    "w = time.perf_counter() - w\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps(dict(draws=d, threads=t, base_kib=base, peak_kib=peak, wall=w)))\n"
)


def section_memory(args, rows):
    out = []
    threads = max(1, len(os.sched_getaffinity(0)))
    for d in (10, 40) if args.quick else (16, 64, 4000):
        code = MEM.format(bench=str(ROOT / "benchmarks"))
        res = subprocess.run([sys.executable, "-c", code, str(d), str(threads)], cwd=ROOT,
                             check=True, capture_output=True, text=True)  # fmt: skip
        r = json.loads(res.stdout.strip().splitlines()[-1])
        r["load"] = load()
        out.append(r)
        full = r["wall"] / d * 4000
        print(
            f"100,000 patients x {d} draws x 12 cycles ({threads} threads): peak RSS "
            f"{r['peak_kib'] / 1024:.0f} MiB (process after loading: "
            f"{r['base_kib'] / 1024:.0f} MiB), {r['wall']:.1f} s"
            + ("" if d == 4000 else f" (4,000 draws would take ~{full / 60:.1f} min)")
            + f"   [load {r['load']}]"
        )
    rows["memory"] = out


def section_scaling(args, rows):
    from lenasim.simulation.engine import simulate_scenario

    sc, draws, idx = setup(1600)
    simulate_scenario(sc, draws.take(slice(0, 2)), posterior_index=idx[:2])
    base_p, base_d, base_c = 1000, 200, 12
    out = []

    def one(p, d, c):
        s = sc.model_copy(update={"regimen": sc.regimen.model_copy(update={"cycles": c})})
        w, _ = engine_time(s, draws.take(slice(0, d)), idx[:d], patients=p, threads=1,
                           repeat=args.repeat)  # fmt: skip
        out.append(dict(patients=p, draws=d, cycles=c, wall=w, ns_per_cell=w / (p * d * c) * 1e9,
                        load=load()))  # fmt: skip
        print(
            f"  {p:>6} patients x {d:>5} draws x {c:>3} cycles: {w:7.3f} s, "
            f"{w / (p * d * c) * 1e9:6.1f} ns per patient-draw-cycle   [load {load()}]"
        )

    print("scaling (1 thread):")
    for p in (250, 1000, 4000):
        one(p, base_d, base_c)
    for d in (100, 400, 1600):
        one(base_p, d, base_c)
    for c in (6, 12, 24):
        one(base_p, base_d, c)
    rows["scaling"] = out


FIT_SETUPS = (
    # (label, fit_bench.py arguments); run in this order, one fresh process each
    ("nutpie-legacy (before issue 13)", ["--setup", "nutpie-legacy"]),
    ("nutpie, compact likelihood graph (no kernel)", ["--setup", "nutpie-graph"]),
    ("nutpie, first process (cold compile caches)", ["--setup", "nutpie", "--cold"]),
    ("nutpie (lenasim default)", ["--setup", "nutpie"]),
    ("nutpie, tune 300, target_accept 0.9", ["--setup", "nutpie", "--tune", "300",
                                               "--target-accept", "0.9"]),
    ("pymc NUTS", ["--setup", "pymc"]),
)  # fmt: skip


def section_fit(args, rows):
    """The sampler set-ups of benchmarks/fit_bench.py, each in a fresh process (its wall
    time includes imports, model build and compilation), in one run. ``--cold`` empties
    lenasim's entries in the compile cache first (what a first fit on a machine pays)."""
    import importlib.util

    setups = list(FIT_SETUPS)
    if importlib.util.find_spec("numpyro") and importlib.util.find_spec("jax"):
        setups.append(("numpyro via PyMC", ["--setup", "numpyro"]))
    else:
        print("numpyro not measured: `pip install numpyro jax` to include it")
    out = []
    for label, extra in setups:
        cold = "--cold" in extra
        extra = [a for a in extra if a != "--cold"]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        if cold:  # empty compile caches: PyTensor's (with nutpie's wrappers) and numba's
            fresh = Path(tempfile.mkdtemp(prefix="lenasim-cold-"))
            env |= {"PYTENSOR_FLAGS": f"base_compiledir={fresh}", "NUMBA_CACHE_DIR": str(fresh)}
        cmd = [sys.executable, str(ROOT / "benchmarks" / "fit_bench.py"), *extra]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        r = json.loads(res.stdout.strip().splitlines()[-1]) | {"label": label, "wall_s": wall}
        out.append(r)
        print(
            f"{label} [{r['version']}; tune {r['tune']}, target_accept {r['target_accept']}]: "
            f"process {wall:.0f} s (compile {r['compile_s']:.0f} s, sampling "
            f"{r['sampling_s']:.0f} s), min bulk/tail ESS {r['min_ess_bulk']:.0f}/"
            f"{r['min_ess_tail']:.0f} ({r['min_ess_bulk_per_s']:.1f}/s), divergences "
            f"{r['divergences']}, max R-hat {r['max_rhat']:.3f}   [load "
            f"{r['load_before']:.2f}-{r['load_after']:.2f}]",
            flush=True,
        )
    rows["fit"] = out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="floor, reference (100 draws, one repeat) and e2e (3 runs) only, unless --only",
    )
    ap.add_argument("--fit", action="store_true", help="also time the samplers (slow)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    args.repeat = 1 if args.quick else 2
    os.chdir(ROOT)
    default = ("floor", "reference", "e2e") if args.quick else SECTIONS
    only = default if args.only is None else tuple(args.only.split(","))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")  # fmt: skip
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), numpy {np.__version__}, load {os.getloadavg()}")
    rows: dict = {}
    fns = {"floor": section_floor, "reference": section_reference, "e2e": section_e2e,
           "memory": section_memory, "scaling": section_scaling}  # fmt: skip
    for name in SECTIONS:
        if name in only:
            print(f"\n== {name}")
            fns[name](args, rows)
    if args.fit or "fit" in only:
        print("\n== fit")
        section_fit(args, rows)
    print(
        f"\npeak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
