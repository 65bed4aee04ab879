#!/usr/bin/env python3
"""Causette's two commands, on a machine with only Python >= 3.11:

    python3 run.py serve     start Causette at http://127.0.0.1:8000 (SQLite, in-process bus)
    python3 run.py test      run the whole test suite (lint, types, tests)

Both create ``.venv`` beside this file on first use and install the locked dependencies
(``requirements/*.lock``, hash-checked) — again only when a lock file changes. Anything after
the command is passed on: ``python3 run.py serve --port 9000``, ``python3 run.py test -k entry``.
Other ``causette`` commands work the same way: ``python3 run.py migrate``; and
``python3 run.py bench S1 S2`` runs benchmark scenarios (``bench/README.md``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCKS = {
    "runtime": ROOT / "requirements" / "runtime.lock",
    "dev": ROOT / "requirements" / "dev.lock",
    "bench": ROOT / "requirements" / "bench.lock",
}
PIP_LOCK = ROOT / "requirements" / "pip.lock"


def say(text: str) -> None:
    print(f"[run.py] {text}", file=sys.stderr, flush=True)


def ensure_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must say so on older Pythons
        sys.exit(f"Causette needs Python 3.11 or newer; this is {sys.version.split()[0]}.")


def ensure_venv() -> None:
    if PYTHON.exists():
        return
    say(f"creating {VENV.relative_to(ROOT)} …")
    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except Exception as exc:
        sys.exit(
            f"Could not create a virtual environment ({exc}).\n"
            "On Debian/Ubuntu install it with: apt-get install python3-venv"
        )


def ensure_deps(kind: str) -> None:
    """Install the locked dependencies of ``kind`` (and the project) if the lock changed."""
    lock = LOCKS[kind]
    sources = (lock, PIP_LOCK, ROOT / "pyproject.toml")
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources))
    stamp = VENV / f".causette-{kind}.sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say(f"installing {kind} dependencies from {lock.relative_to(ROOT)} …")
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, "--require-hashes", "-r", str(PIP_LOCK)], check=True)
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    stamp.write_text(digest.hexdigest())


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def test(extra: list[str]) -> int:
    """Lint, format check, strict typing, then every test (the README's test command)."""
    checks = [
        ("ruff check", [str(BIN / "ruff"), "check", "."]),
        ("ruff format --check", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy --strict", [str(BIN / "mypy")]),
    ]
    if not extra:
        for name, cmd in checks:
            say(name)
            code = run(cmd)
            if code:
                say(f"{name} failed")
                return code
    say("pytest")
    return run([str(PYTHON), "-m", "pytest", *extra])


def main() -> int:
    ensure_python()
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, extra = sys.argv[1], sys.argv[2:]
    ensure_venv()
    if command == "test":
        ensure_deps("dev")
        return test(extra)
    if command == "bench":
        ensure_deps("bench")
        return run([str(PYTHON), "-m", "bench", *extra])
    ensure_deps("runtime")
    return run([str(BIN / "causette"), command, *extra])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
    except KeyboardInterrupt:
        sys.exit(130)
