# shellcheck shell=bash
# Sourced by scripts/test, scripts/check and scripts/demo: the project's own virtual environment.
#
#   ensure_venv requirements/test.txt
#
# creates .venv (no system site-packages) when missing, installs the locked versions of
# the given requirements file (hash-checked) and the project itself (editable), and
# skips the install when the lock and pyproject.toml have not changed since the last one.
# Nothing is installed outside .venv, so a package left on the machine can neither
# make the tests pass nor the demo start.

VENV=".venv"

_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    # apt_install PKG...: Debian packages, installed non-interactively.
    echo "installing ${*} (Debian packages)" >&2
    _as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_venv() {
    local lock="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
            apt_install python3-venv
        fi
        python3 -m venv "$VENV"
    fi
    local stamp
    stamp="$VENV/.installed-$(basename "$lock")"
    local want
    want="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing the locked dependencies ($lock) into $VENV" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
        echo "$want" >"$stamp"
    fi
}
