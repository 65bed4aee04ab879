#!/usr/bin/env bash
# Regenerate the hash-locked requirements from pyproject.toml, for every platform and
# Python >= 3.11. Needs uv (pip install uv); UV=/path/to/uv to choose one.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
common=(pyproject.toml requirements/build.in --generate-hashes --universal --python-version 3.11 -q)
"$UV" pip compile "${common[@]}" -o requirements/runtime.lock
"$UV" pip compile "${common[@]}" --extra dev -o requirements/dev.lock
"$UV" pip compile "${common[@]}" --extra dev --extra bench -o requirements/bench.lock
echo "requirements/runtime.lock, dev.lock and bench.lock regenerated"
