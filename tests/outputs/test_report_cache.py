"""The report's templates compiled once into a per-user cache (lenasim.outputs.report.html)."""

from __future__ import annotations

import jinja2
import pytest

from lenasim.outputs.report import html

TEMPLATES = ("base.html", "macros.html", "run.html", "compare.html")


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A new environment per call, its cache in tmp_path/cache unless set otherwise."""
    monkeypatch.setenv("LENASIM_CACHE_DIR", str(tmp_path / "cache"))

    def make():
        html._environment.cache_clear()
        return html._environment()

    yield make
    html._environment.cache_clear()


def test_templates_compiled_once_then_read_from_the_cache(fresh, tmp_path, monkeypatch):
    first = fresh()
    for name in TEMPLATES:
        first.get_template(name)
    files = sorted((tmp_path / "cache" / "templates").glob("lenasim-*.cache"))
    assert len(files) == len(TEMPLATES)

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled although cached")

    second = fresh()
    monkeypatch.setattr(second, "compile", no_compile)
    for name in TEMPLATES:
        assert second.get_template(name).name == name
        # the cached code is what compiling the template's source now gives
        source, filename, _ = second.loader.get_source(second, name)
        bucket = second.bytecode_cache.get_bucket(second, name, filename, source)
        assert bucket.code is not None
        assert bucket.code == jinja2.Environment.compile(second, source, name, filename)


def test_a_damaged_cache_file_is_compiled_again(fresh, tmp_path):
    fresh().get_template("macros.html")
    (damaged,) = (tmp_path / "cache" / "templates").glob("lenasim-*.cache")
    damaged.write_bytes(damaged.read_bytes()[:40])
    assert fresh().get_template("macros.html").module.table is not None
    assert len(damaged.read_bytes()) > 40  # written again


def test_no_cache_without_a_writable_folder(fresh, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("LENASIM_CACHE_DIR", str(tmp_path / "file"))
    assert html.cache_dir() is None
    assert fresh().bytecode_cache is None
    assert fresh().get_template("macros.html").module.table is not None
    monkeypatch.setenv("LENASIM_CACHE_DIR", "")
    assert html.cache_dir() is None


def test_default_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LENASIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert html.cache_dir() == tmp_path / "xdg" / "lenasim" / "templates"
