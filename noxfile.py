"""Sessions: `nox` runs the tests; `nox -s slow lint typecheck docs bench` run the rest."""

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _install(session: nox.Session, *groups: str, extras: str = "examples") -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", f".[{extras}]" if extras else ".", *deps)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Run the test suite on every core (one test file per worker, so the tests of a file
    share their compiled programs); extra arguments go to pytest."""
    _install(session, "test")
    workers = ["-n", "auto", "--dist", "loadfile"]
    session.run("pytest", *workers, *session.posargs, env={"JAX_PLATFORMS": "cpu"})


@nox.session(python="3.11")
def slow(session: nox.Session) -> None:
    """The slow tests (learning targets of the presets; tens of minutes on 2 cores)."""
    _install(session, "test")
    session.run("pytest", "-m", "slow", *session.posargs, env={"JAX_PLATFORMS": "cpu"})


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """Pyright over the package, examples and benchmarks."""
    _install(session, "typecheck", "test")
    session.run("pyright", *session.posargs)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site with `mkdocs build --strict`."""
    _install(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Run the benchmarks; tables are printed and saved under `benchmarks/results/`."""
    _install(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
