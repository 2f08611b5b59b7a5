#!/usr/bin/env bash
# Install adcreative with its extras into the current Python (3.11+).
#   bash scripts/setup.sh            # everything the demo and the tests use
#   EXTRAS=ml bash scripts/setup.sh  # a smaller install
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${EXTRAS:-all,dev,scale}
# torch is pinned to the CPU build (2.13.0) in the extras; an unpinned torch would pull a multi-GB CUDA build.
"$PY" -m pip install -q -e ".[${EXTRAS}]"
# rapidocr's own requirement pulls the desktop opencv-python 5.x, which replaces cv2 and drops the Haar
# cascades; its real needs are in the [represent] extra, so install it alone.
if [[ ",${EXTRAS}," == *",all,"* || ",${EXTRAS}," == *",represent,"* ]]; then
  "$PY" -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4"
fi
# The console's browser tests drive Debian's chromium through Python playwright (never `playwright install`,
# whose download fails offline). As root (CI on a clean machine) install it; otherwise say how.
if [[ ",${EXTRAS}," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; the browser tests will skip (sudo apt-get install chromium)" >&2
  fi
fi
