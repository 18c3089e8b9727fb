"""Developer sessions: tests (all or per backend), lint, typecheck, examples."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
BACKENDS = ("sqlite", "postgresql", "mysql")


@nox.session
def tests(session: nox.Session) -> None:
    """All tests on all backends (unreachable servers skip unless CI=true)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("backend", BACKENDS)
def backend(session: nox.Session, backend: str) -> None:
    """Tests on one backend, e.g. ``nox -s "backend(backend='postgresql')"``."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs, env={"AR_TEST_BACKENDS": backend})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, examples and benchmarks."""
    session.install("ruff")
    session.run("ruff", "check", "activerecord", "tests", "examples", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def examples(session: nox.Session) -> None:
    """Every example script and the guide demo, on every backend."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests/test_demo_and_examples.py", *session.posargs)
