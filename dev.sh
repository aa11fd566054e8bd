#!/usr/bin/env bash
# Fresh-machine entry point: `./dev.sh serve [options]` runs the demo server,
# `./dev.sh test [pytest args]` runs the checks. Each installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")"

install_venv() {  # install_venv FOLDER PYTHON REQUIREMENTS: reinstalled when REQUIREMENTS change
    local venv=$1 python=$2 requirements=$3
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    if ! sha256sum --status -c "$venv/requirements.sha256" 2>/dev/null; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        sha256sum "$requirements" > "$venv/requirements.sha256"
    fi
}

install_python() {
    install_venv .venv python3 requirements.txt
}

install_python37() {
    # The core's tests also run on Python 3.7 with Odoo 14's pins (tests/compat); without
    # a 3.7 interpreter that test fails, saying so, and the others still run.
    local python
    for python in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.7.*/bin/python "$(command -v python3.7 || true)"; do
        if [ -x "$python" ]; then
            install_venv .venv37 "$python" requirements-odoo14-py37.txt
            return
        fi
    done
    echo "dev.sh: no Python 3.7 found (pyenv install 3.7.16, or python3.7 on the PATH)" >&2
}

install_chromium() {
    # Browser tests drive Debian's Chromium; they are skipped, loudly, if it cannot be had.
    command -v chromium >/dev/null && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
            echo "dev.sh: could not install chromium; browser tests will be skipped" >&2
    fi
}

install_nginx() {
    # tests/proxy runs Debian's nginx (in /usr/sbin, which a non-root PATH may lack) with
    # deploy/nginx.conf; it is skipped, loudly, if nginx cannot be had.
    { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null) && return
    fi
    echo "dev.sh: could not install nginx; the proxy test will be skipped" >&2
}

case "${1:-}" in
    serve)
        shift
        install_python
        exec .venv/bin/python -m imbus serve "$@"
        ;;
    test)
        shift
        install_python
        install_python37
        install_chromium
        install_nginx
        .venv/bin/ruff check .
        exec .venv/bin/pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh serve [--port 8072 ...] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
