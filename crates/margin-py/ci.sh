#!/usr/bin/env bash
# The Python package's CI step (called by .ci/test after the cargo tests):
#   1. builds the wheel with maturin in the workspace's `checked` profile — after
#      `cargo test --profile checked --workspace` this compiles margin-py and pyo3 only;
#      the step fails if maturin compiles any Burn crate (CI builds Burn once);
#   2. installs it into a fresh virtual environment under the CI cache
#      (a per-run folder under ../.cache/margin-ci, removed on exit; numpy and pytest from pip);
#   3. runs the Python tests with pytest (against the `margin` binary the cargo tests built).
# maturin and pytest live in a tools venv in the same cache, installed once.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${MARGIN_CI_CACHE:-$(cd .. && pwd)/.cache/margin-ci}"
PY="${PYTHON:-python3}"
export PIP_CACHE_DIR="$CACHE/pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1
TOOLS="$CACHE/py-tools"
if [ ! -x "$TOOLS/bin/maturin" ] || [ ! -x "$TOOLS/bin/pytest" ]; then
    echo "installing maturin and pytest into $TOOLS"
    "$PY" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet "maturin>=1.9,<2" pytest numpy
fi
# The wheel, the build log and the test venv are this run's own (two runs sharing the cache,
# say a developer's and a clean clone's, once deleted each other's wheel mid-install).
mkdir -p "$CACHE"
RUN_DIR="$(mktemp -d "$CACHE/py-run.XXXXXX")"
trap 'rm -rf "$RUN_DIR"' EXIT
WHEELS="$RUN_DIR/wheels"
LOG="$RUN_DIR/maturin-build.log"
# Enforced when the cargo tests already built Burn in `checked` (as in .ci/test); a first
# build on a bare machine compiles it here instead.
BURN_BUILT=0
if compgen -G "target/checked/deps/libburn_core-*.rlib" >/dev/null; then BURN_BUILT=1; fi
# The workspace's feature set of .ci/test (MARGIN_CI_FEATURES): with Burn's wgpu backend in
# the cargo tests' build, the wheel enables margin-py's `wgpu` feature, so Burn resolves alike.
WHEEL_FEATURES=()
if [[ "${MARGIN_CI_FEATURES:-}" == *wgpu* ]]; then WHEEL_FEATURES=(--features wgpu); fi
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" "$TOOLS/bin/maturin" build --profile checked "${WHEEL_FEATURES[@]}" \
    -m crates/margin-py/Cargo.toml -i "$PY" -o "$WHEELS" 2>&1 | tee "$LOG"
if [ "$BURN_BUILT" -eq 1 ] && grep -E '^\s*Compiling (burn|cubecl)' "$LOG"; then
    echo "error: the wheel build recompiled Burn (above): its features differ from the workspace's; see the feature pins in crates/margin-py/Cargo.toml" >&2
    exit 1
fi
echo "wheel build: $(grep -cE '^\s*Compiling' "$LOG" || true) crates compiled, $(grep -cE '^\s*Compiling (burn|cubecl)' "$LOG" || true) of them Burn's"
VENV="$RUN_DIR/venv"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet numpy pytest
"$VENV/bin/pip" install --quiet --no-deps --no-index "$WHEELS"/margin-*.whl
# Run from the tests folder so `import margin` is the installed wheel, not the source tree.
cd crates/margin-py/tests
MARGIN_BIN="${MARGIN_BIN:-$OLDPWD/target/checked/margin}" MARGIN_SHARED="${MARGIN_SHARED:-$(cd "$OLDPWD/.." && pwd)/shared}" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider .
