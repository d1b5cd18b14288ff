"""`make run` looks healthy: a clean install, a favicon, and a way back into the demo.

The package declaration in pyproject.toml is checked statically (every folder of
templates/, static/, migrations/ and the package is a declared package, every file in it
is named by package-data), then a real wheel is built and must come without a single
setuptools warning and with every one of those files inside.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import User

from .conftest import sqlite_pass_only

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: The folders a wheel must carry, beside the Python package itself.
ASSETS = ("templates", "static", "migrations")
IGNORED_DIRS = {"__pycache__"}


def _package_dirs() -> dict[str, Path]:
    """Each declared package -> the folder it is built from."""
    mapping = SETUPTOOLS.get("package-dir", {})
    found = {}
    for package in SETUPTOOLS["packages"]:
        parts = package.split(".")
        for n in range(len(parts), 0, -1):
            base = ".".join(parts[:n])
            if base in mapping:
                found[package] = ROOT / mapping[base] / Path(*parts[n:])
                break
        else:
            found[package] = ROOT / Path(*parts)
    return found


def _folders() -> list[Path]:
    """Every folder whose files a wheel must carry."""
    roots = [ROOT / "ideaboard", *(ROOT / name for name in ASSETS)]
    folders = []
    for root in roots:
        for path in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if IGNORED_DIRS.isdisjoint(path.relative_to(ROOT).parts):
                folders.append(path)
    return folders


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".pyc")


def _declared_data() -> set[Path]:
    """The files package-data names (setuptools' glob rules, ** included)."""
    dirs = _package_dirs()
    found: set[Path] = set()
    for package, patterns in SETUPTOOLS.get("package-data", {}).items():
        for pattern in patterns:
            for name in glob.glob(pattern, root_dir=dirs[package], recursive=True):
                found.add((dirs[package] / name).resolve())
    return found


@sqlite_pass_only  # files and commands only, no database
def test_licence_is_an_spdx_string_and_setuptools_understands_it():
    """`license` is the SPDX string (not the deprecated table); setuptools>=77 reads it."""
    assert PYPROJECT["project"]["license"] == "AGPL-3.0-or-later"
    requires = " ".join(PYPROJECT["build-system"]["requires"])
    assert (
        re.search(r"setuptools>=(\d+)", requires)
        and int(re.search(r"setuptools>=(\d+)", requires)[1]) >= 77
    )


@sqlite_pass_only  # files and commands only, no database
def test_every_folder_is_a_declared_package():
    """Each folder of the package, templates/, static/ and migrations/ is in `packages`:
    setuptools warns about (and would leave out) one it was not told about."""
    declared = {path.resolve() for path in _package_dirs().values()}
    missing = [
        str(folder.relative_to(ROOT))
        for folder in _folders()
        if _files(folder) and folder.resolve() not in declared
    ]
    assert not missing, (
        "add these folders to [tool.setuptools] packages in pyproject.toml "
        "(templates/x is ideaboard.templates.x): " + ", ".join(missing)
    )


@sqlite_pass_only  # files and commands only, no database
def test_every_file_is_python_or_named_by_package_data():
    """Every file a wheel needs is a module of a declared package or matches package-data,
    and include-package-data is off, so that list is the whole story."""
    assert SETUPTOOLS.get("include-package-data") is False
    data = _declared_data()
    missing = [
        str(path.relative_to(ROOT))
        for folder in _folders()
        for path in _files(folder)
        if path.suffix != ".py" and path.resolve() not in data
    ]
    assert not missing, "name these in [tool.setuptools.package-data]: " + ", ".join(missing)


def test_the_favicon_is_linked_and_served(client):
    """base.html links static/favicon.svg, and /favicon.ico answers with that icon."""
    page = client.get("/").get_data(as_text=True)
    icon = r'<link rel="icon" href="/static/favicon.svg\?v=\w+" type="image/svg\+xml">'
    assert re.search(icon, page)
    svg = (ROOT / "static" / "favicon.svg").read_bytes()
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.mimetype == "image/svg+xml" and resp.data == svg
    again = client.get("/favicon.ico", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304


@sqlite_pass_only  # files and commands only, no database
def test_make_run_takes_port_and_host():
    """`make run PORT=8000 HOST=…` serves there (dry run), and mail links follow."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        [make, "-n", "-W", "pyproject.toml", "run", "PORT=8123", "HOST=127.0.0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "run --host 127.0.0.2 --port 8123" in out
    assert "http://127.0.0.2:8123" in out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run PORT=8000" in readme


def test_demo_again_names_its_accounts_and_new_passwords_work(app, client):
    """With the demo loaded, `demo --if-empty` names the accounts and how to get new
    passwords; `demo --new-passwords` prints passwords that sign in (old ones stop)."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    old = dict(re.findall(r"(\S+@example\.com)  password: (\S+)", first.output))
    # i14: the fan clubs' moderator signs in too.
    assert set(old) == {
        "admin@example.com",
        "pm@example.com",
        "anna@example.com",
        "mod@example.com",
    }

    again = runner.invoke(args=["demo", "--if-empty"])
    assert again.exit_code == 0
    for email in old:
        assert email in again.output
    assert "demo --new-passwords" in again.output

    reset = runner.invoke(args=["demo", "--new-passwords"])
    assert reset.exit_code == 0, reset.output
    new = dict(re.findall(r"(\S+@example\.com)  password: (\S+)", reset.output))
    assert set(new) == set(old) and not set(new.values()) & set(old.values())
    db.session.expire_all()
    for email, password in new.items():
        resp = client.post("/login", data={"email": email, "password": password})
        assert resp.status_code == 303, email
        client.post("/logout")
    resp = client.post(
        "/login", data={"email": "pm@example.com", "password": old["pm@example.com"]}
    )
    assert resp.status_code == 422


def test_new_passwords_without_a_demo_says_so(app):
    """On a database without the demo, --new-passwords changes nothing and says why."""
    result = app.test_cli_runner().invoke(args=["demo", "--new-passwords"])
    assert result.exit_code == 1 and "no demo accounts" in result.output
    assert db.session.scalars(select(User)).first() is None


def _wheel_source(tmp_path: Path) -> Path:
    """What a build reads, copied, so the build leaves nothing in the checkout."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("ideaboard", *ASSETS):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    return source


@sqlite_pass_only  # files and commands only, no database
def test_a_wheel_builds_without_warnings_and_carries_every_file(tmp_path):
    """pip builds the wheel with no setuptools warning at all (the licence table and the
    undeclared folders gave dozens), and every template, static file, migration and
    compiled catalog is inside it."""
    source = _wheel_source(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = out.stdout + out.stderr
    if out.returncode != 0 and re.search(r"No matching distribution|Could not find a version", log):
        pytest.skip("no setuptools>=77 reachable to build with:\n" + log[-500:])
    assert out.returncode == 0, log[-3000:]
    # pip's own notes are "WARNING: …"; setuptools' are Python warnings (…Warning: …).
    warnings = [line for line in log.splitlines() if re.search(r"[a-z]Warning\b", line)]
    assert not warnings, "\n".join(warnings)

    [wheel] = (tmp_path / "dist").glob("ideaboard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = []
    for folder in _folders():
        for path in _files(folder):
            rel = path.relative_to(ROOT)
            inside = rel if rel.parts[0] == "ideaboard" else Path("ideaboard", *rel.parts)
            expected.append(inside.as_posix())
    missing = sorted(set(expected) - names)
    assert not missing, missing
    for needed in (
        "ideaboard/templates/base.html",
        "ideaboard/static/favicon.svg",
        "ideaboard/migrations/env.py",
        "ideaboard/translations/ru/LC_MESSAGES/messages.mo",
        "ideaboard/data/common-passwords.txt",
    ):
        assert needed in names
