#!/usr/bin/env bash
# Build the simulation store (SIMHOME) and its represent encoder (ENCODER) that `select simulate --from-store
# --encoder ENCODER` and `select coldstart` read (docs/select.md), from a clean clone, with the project's own
# commands only:
#   1. catalogue: the 7 sample products + the 7 real JD cutouts in ../shared/data/products (titles, copy,
#      prices and badges from tests/data/jd_products.json) = 14 products;
#   2. compositor creatives: N per aspect ratio for every product (default 6 x 1:1, 4:5, 16:9, 9:16 = 24 per
#      product, 336 in all), seeded;
#   3. audit: the shipped RFNet scores every creative (`inspect run`); "available" = its most probable class
#      is `available` (Store.available_creatives), whatever its accept / human / reject band;
#   4. represent encoder: MoCo v3 heads trained on all stored creatives (`represent train`, seeded; 600 steps);
#   5. a short campaign (2,000 impressions, oracle and uniform) computes and caches represent's explicit
#      features and the encoder's embeddings of the available creatives, and prints how many are available.
#
#   bash scripts/sim_store.sh SIMHOME [ENCODER]          # ENCODER defaults to SIMHOME/encoder
#
# Overrides (environment): SIM_PRODUCTS (cutout folder; default ../shared/data/products beside the
# repository), SIM_N (creatives per aspect, 6), SIM_ASPECTS (1:1,4:5,16:9,9:16), SIM_SEED (0),
# SIM_STEPS (encoder steps, 600), SIM_VIEWS (views per creative, 6), SIM_INSPECTOR (inspector folder;
# default the shipped RFNet), PYTHON (python3). SIMHOME must not hold a store yet. Run CPU-heavy on a shared
# box under `nice`. On one machine the build is bit-reproducible (creatives, verdicts, encoder weights);
# what the history fixes and what this recipe chooses: docs/select.md, "The simulation store and its encoder".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home=${1:?usage: scripts/sim_store.sh SIMHOME [ENCODER]}
enc=${2:-$home/encoder}
PY=${PYTHON:-python3}
products=${SIM_PRODUCTS:-$root/../shared/data/products}
n=${SIM_N:-6}
aspects=${SIM_ASPECTS:-1:1,4:5,16:9,9:16}
seed=${SIM_SEED:-0}
steps=${SIM_STEPS:-600}
views=${SIM_VIEWS:-6}
inspector=()
[[ -n ${SIM_INSPECTOR:-} ]] && inspector=(--model "$SIM_INSPECTOR")

if [[ -e $home && -n $(ls -A "$home" 2>/dev/null) ]]; then
  echo "sim_store.sh: $home is not empty; the recipe starts from a fresh store (remove it or pick another)" >&2
  exit 2
fi
if [[ -e $enc ]]; then
  echo "sim_store.sh: encoder folder $enc exists; pick another or remove it" >&2
  exit 2
fi
if [[ ! -d $products ]]; then
  echo "sim_store.sh: no product cutouts at $products (set SIM_PRODUCTS)" >&2
  exit 2
fi
unset ADCREATIVE_DATABASE_URL  # the store is the SQLite file in SIMHOME, never a database from the environment
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH=$root/src${PYTHONPATH:+:$PYTHONPATH}  # this checkout's code, even when another is installed
ad() { "$PY" -m adcreative --home "$home" "$@"; }
step() { echo "== $(date -u +%H:%M:%S) $*"; }
t0=$SECONDS

step "catalogue"
ad products sample
ad products add "$products" --meta "$root/tests/data/jd_products.json"
step "generate: compositor, $n per aspect ($aspects), seed $seed"
ad generate --product all --generator compositor --n "$n" --aspect "$aspects" --seed "$seed" >/dev/null
step "audit: inspect run"
ad inspect run "${inspector[@]}"
step "encoder: represent train ($steps steps, $views views, seed $seed) -> $enc"
ad represent train --out "$enc" --steps "$steps" --views "$views" --seed "$seed" --threads 1
step "features and embeddings of the available creatives (a 2,000-impression campaign)"
ad select simulate --from-store --encoder "$enc" --n 2000 --seeds 0 --policies oracle,uniform
step "done in $((SECONDS - t0)) s: SIMHOME $home, ENCODER $enc"
