#!/usr/bin/env bash
# Fresh-machine entry point: `./dev.sh serve [options]` runs the demo server,
# `./dev.sh test [pytest args]` runs the checks. Each installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")"

install_python() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    local stamp=.venv/requirements.sha256
    if ! sha256sum --status -c "$stamp" 2>/dev/null; then
        .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
        sha256sum requirements.txt > "$stamp"
    fi
}

install_chromium() {
    # Browser tests drive Debian's Chromium; they are skipped, loudly, if it cannot be had.
    command -v chromium >/dev/null && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
            echo "dev.sh: could not install chromium; browser tests will be skipped" >&2
    fi
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
        install_chromium
        .venv/bin/ruff check .
        exec .venv/bin/pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh serve [--port 8072 ...] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
