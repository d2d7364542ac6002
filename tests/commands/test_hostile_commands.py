"""The command half of the second round of hostile inputs (issues 21 and 22): every
value a later stage would refuse is refused before any work, with exit code 2 and a
message in words; memory estimates see the process's own limit; Dask addresses are
validated before connecting and every network wait has a deadline.

Commands run through ``lenasim.cli.main`` in process, as in test_safety.py; "no
traceback" is asserted on stderr each time.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from helpers import cli
from lenasim.cli import main
from lenasim.core.errors import LenasimError

REPO = Path(__file__).resolve().parents[2]
SLOW_CFG = Path("configs/slow_escalation.yaml")
SEARCH_CFG = Path("configs/search_relapsed.yaml")
TINY = ("--patients", "20", "--draws", "5", "--no-plots", "--quiet")


@pytest.fixture
def no_work(monkeypatch):
    """Loading a posterior or simulating fails the test: refusals come before them."""
    from lenasim.pipeline import posterior, run

    monkeypatch.setattr(posterior, "ensure_posterior", lambda *a, **k: pytest.fail("loaded"))
    monkeypatch.setattr(run, "simulate_run", lambda *a, **k: pytest.fail("simulated"))


# ---------------------------------------------------------------- validate, run, search


def test_validate_with_a_negative_sbc_is_a_message(capsys):
    with pytest.raises(SystemExit) as err:
        main(["validate", "--sbc", "-5"])
    assert err.value.code == 2
    assert "--sbc: must be >= 0 (got -5)" in capsys.readouterr().err


def test_validate_pipeline_refuses_a_negative_sbc(tmp_path):
    from lenasim.core.errors import ConfigError
    from lenasim.pipeline.validate import ValidateOptions, run_validation

    with pytest.raises(ConfigError, match=r"--sbc: must be a whole number >= 0 of fits"):
        run_validation(ValidateOptions(spec=REPO / "models/default.yaml", out=tmp_path / "v",
                                       sbc=-5, only="sbc"))  # fmt: skip


def test_validate_takes_its_configs_from_the_spec_or_the_command_line(tmp_path):
    from lenasim.core.errors import ConfigError
    from lenasim.pipeline.validate import scenario_configs

    found = scenario_configs(REPO / "models/default.yaml", None)
    assert REPO / "configs/slow_escalation.yaml" in found
    assert not any(p.name.startswith("search_") for p in found)
    (tmp_path / "models").mkdir()
    with pytest.raises(ConfigError, match="no scenario configs in"):
        scenario_configs(tmp_path / "models/default.yaml", None)
    assert scenario_configs(tmp_path / "x.yaml", (REPO / SLOW_CFG,)) == [REPO / SLOW_CFG]


def test_validate_of_the_shipped_spec_takes_the_current_folders_configs(monkeypatch):
    """The shipped spec lies inside the package (models/ is a link to it): its configs
    are those of the current folder, as the README's `validate` runs from the checkout."""
    from lenasim.core.shipped import DEFAULT_SPEC
    from lenasim.pipeline.validate import scenario_configs

    monkeypatch.chdir(REPO)
    assert Path("configs/slow_escalation.yaml").absolute() in scenario_configs(DEFAULT_SPEC, None)


def test_an_empty_results_folder_option_is_refused(posterior_workdir, capsys, no_work):
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", "", *TINY)
    assert rc == 2 and "--results: is empty" in err
    rc, _, err = cli(capsys, "search", SEARCH_CFG, "--results", " ", "--quiet")
    assert rc == 2 and "--results: is empty" in err


def test_an_over_long_results_path_is_refused_before_simulating(posterior_workdir, capsys,
                                                                no_work):  # fmt: skip
    long = "/".join(["d" * 200] * 25)
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", long, *TINY)
    assert rc == 2 and "--results: the path" in err and "characters) is too long" in err
    assert len(err) < 600  # the path is shortened, not printed whole


def test_a_run_without_rules_says_what_the_protocol_does(posterior_workdir, capsys):
    import yaml

    cfg = posterior_workdir / "configs" / "norules.yaml"
    data = yaml.safe_load(SLOW_CFG.read_text())
    data.pop("rules")
    data["name"] = "norules"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    rc, out, _ = cli(capsys, "run", cfg, *TINY)
    assert rc == 0
    assert "No `rules` in the config: the protocol carries on whatever happens" in out
    assert "on TLS: continue as planned" in out and "grade 3-4 neutropenia" in out
    rc, out, _ = cli(capsys, "run", SLOW_CFG, *TINY)
    assert rc == 0 and "No `rules`" not in out  # slow_escalation states its rules


def test_a_full_disk_names_the_result_folder(posterior_workdir, capsys, monkeypatch):
    import errno

    from lenasim.pipeline import run

    def full(ds, tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run, "write_tables", full)
    rc, _, err = cli(capsys, "run", SLOW_CFG, *TINY)
    assert rc == 2
    assert "results/slow_escalation: No space left on device while writing the results" in err


def test_os_errors_shorten_long_paths():
    from lenasim.cli import os_error_text

    msg = os_error_text(OSError(36, "File name too long", "/x" * 3000))
    assert msg.startswith("File name too long: /x/x") and "(6000 characters)" in msg
    assert len(msg) < 200


# ---------------------------------------------------------------------------- memory


def test_memory_sees_the_process_limit(monkeypatch):
    from lenasim.pipeline import memory

    monkeypatch.setattr(memory.resource, "getrlimit", lambda what: (3 * 2**30, 3 * 2**30))
    free = memory.available_memory()
    assert free is not None and free <= 3 * 2**30
    from lenasim.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        memory.check_simulation_memory("c.yaml", patients=40_000_000, levels=3, cycles=12,
                                       draws=100, threads=1)  # fmt: skip
    msg = str(err.value)
    # 40e6 patients x 112 bytes (engine.memory_estimate) = 4.2 GiB
    assert "c.yaml: the simulation needs about 4.2 GB" in msg
    assert "(its limit, `ulimit -v`)" in msg and "--patients N" in msg


def test_a_search_too_large_for_memory_is_refused_before_loading(posterior_workdir, capsys,
                                                                 no_work, monkeypatch):  # fmt: skip
    from lenasim.pipeline import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    rc, _, err = cli(capsys, "search", SEARCH_CFG, "--patients", "1000000000", "--quiet")
    assert rc == 2 and "configs/search_relapsed.yaml: the simulation needs about" in err
    assert "population.patients: use fewer patients" in err


# ------------------------------------------------------------------------------ Dask


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("foo://bar", "unknown protocol 'foo'"),
        ("tcp://", "no host and port"),
        ("tcp://host:notaport", "the port must be a number from 1 to 65535 (got 'notaport')"),
        ("tcp://host:70000", "the port must be a number from 1 to 65535"),
        ("my-cluster", "not an address"),
    ],
)
def test_dask_addresses_are_validated_before_connecting(posterior_workdir, capsys, no_work,
                                                        address, words):  # fmt: skip
    rc, _, err = cli(capsys, "search", SEARCH_CFG, "--dask", address, "--quiet")
    assert rc == 2 and words in err and "tcp://SCHEDULER-HOST:8786" in err


def test_workers_are_bounded(posterior_workdir, capsys, no_work):
    rc, _, err = cli(capsys, "search", SEARCH_CFG, "--dask", "local", "--workers", "100000")
    assert rc == 2 and "--workers: must be from 1 to" in err


@pytest.mark.parametrize("answer", [None, b"\xff" * 64 + bytes(range(256)) * 4])
def test_a_scheduler_that_never_answers_is_a_message_within_the_deadline(monkeypatch, answer):
    """A service that accepts and stays silent, or answers garbage: exit 2 naming it."""
    pytest.importorskip("distributed")
    from lenasim.search import execute

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    held: list[socket.socket] = []

    def accept():  # accept connections and never answer (or answer garbage)
        while True:
            try:
                conn, _ = server.accept()
                if answer is not None:
                    conn.sendall(answer)
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setattr(execute, "CONNECT_SECONDS", 1.0)
    monkeypatch.setattr(execute, "CONNECT_GRACE_SECONDS", 0.5)  # (10 s: waited, no CPU)
    # dask_client's Client is not made dask's default: a default Client sets dask's
    # global config (scheduler="dask.distributed") as it starts and undoes it only when
    # closed, which for one that failed to connect is whenever the garbage collector frees
    # it; until then every xarray/dask computation of the later tests failed ("Requested
    # dask.distributed scheduler but no Client active"), flakily. Checked below.
    import dask

    got: list[BaseException] = []

    def connect():
        try:
            with execute.dask_client(f"tcp://127.0.0.1:{port}"):
                pass
        except BaseException as err:  # noqa: BLE001 - handed to the test
            got.append(err)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(300)  # a liveness bound (the deadline is 1 s + 0.5 s), not a speed test
    server.close()
    for c in held:
        c.close()
    assert not worker.is_alive(), "the connection hung"
    assert len(got) == 1 and isinstance(got[0], LenasimError), got
    assert f"tcp://127.0.0.1:{port}" in str(got[0])
    assert dask.config.get("scheduler", None) != "dask.distributed"  # no default left behind
    assert ("no answer within" if answer is None else "not a Dask scheduler") in str(got[0])


def test_an_empty_csv_path_is_refused(capsys):
    rc, out, err = cli(capsys, "evidence", "--csv", "")
    assert rc == 2 and "--csv: is empty" in err and out == ""
