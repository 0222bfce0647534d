#!/usr/bin/env bash
# The cloudserve demo on the local target: two versions of a model, a default switch, predictions.
# Run from the repository root after: pip install -e '.[runtime]'
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2

work="$(mktemp -d)"
trap 'cloudserve local stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export CLOUDSERVE_LOCAL__REPOSITORY="$work/repo"   # targets.local.repository
export CLOUDSERVE_MODEL=demo-model CLOUDSERVE_TARGET=local
body='{"instances": [[1.0], [2.0]]}'

echo "== export half_plus_two as version 1 (y = 0.5x + 2)"
python examples/export_models.py half_plus_two --out "$work/exports/half_plus_two" --version 1
cloudserve inspect "$work/exports/half_plus_two/1"

echo "== deploy version 1 (the first version becomes the default)"
cloudserve deploy --export "$work/exports/half_plus_two/1"
cloudserve predict --data "$body"

echo "== export the linear model (y = 2x + 1) and deploy it as version 2"
python examples/export_models.py linear --out "$work/exports/linear" --version 2 --weight 2 --bias 1
cloudserve deploy --export "$work/exports/linear/2"
cloudserve versions list

echo "== make version 2 the default"
cloudserve versions set-default 2
cloudserve predict --data "$body"
cloudserve predict --version 1 --data "$body"

echo "== stop the local runtime"
cloudserve local stop
