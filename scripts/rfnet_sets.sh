#!/usr/bin/env bash
# Render the nine cross-renderer sets the shipped RFNet (E6, src/adcreative/assets/rfnet/README.md) was trained and
# calibrated on, from a clean clone, with the project's own commands only (docs/inspect.md, issue 13, rounds 11-13,
# 20-24):
#   v11 = --seed 13, 30 procedural + 30 fitted SKUs   4,821 images
#   v12 = --seed 14, 30 + 30                          4,824
#   v13 = --seed 15, 50 + 50                          6,034
#   v16 = --seed 16, 30 + 30                          4,827 (twenty-first round)
#   v17 = --seed 17, 30 + 30                          4,826 (twenty-first round)
#   v41-v44 = --seed 41-44, 30 + 30 each             about 4,830 each (twenty-second and twenty-third rounds)
# Each set holds:
#   - the 7 JD cutouts, with titles from tests/data/jd_products.json;
#   - the 17 products-extra images, leaving out the two the importer's matting flags (p045, p048);
#   - the real products in 3 colourways each, and the 7 sample products;
#   - one image per class, product and family, from five renderer families; 80 % of images degraded;
#   - JD 1 and 5 and p013, p017, p023, p026, p047 forced into test.
# Rebuilt this way on 2026-12-05, v11-v13 split exactly as W's did (train 7,262 / val 2,133 / test 6,284 with
# --splits first), and W, an earlier default, scores its recorded test figures on them (twentieth round). The five
# sets v13 v11 v12 v16 v17 give train 11,558 / val 3,467 / test 10,307; all nine, train 20,116 / val 6,042 / test
# 18,491.
#
#   bash scripts/rfnet_sets.sh OUT [v11,...,v44]   # writes OUT/v11 ...; 6-15 min per set on 2 cores
#
# Then the shipped model's recipe: W's recipe (lr 5e-4, chosen on validation with seed 0; warm start from G, the
# default before W), seeds 0 and 1 on the five sets and seeds 0 and 1 on the nine, the four ensembled and
# calibrated on the nine with the rule "floor" and the real-product bias.
# Fetch G first: mkdir G; for f in config.json model.safetensors; do
#   git show e3081c0:src/adcreative/assets/rfnet/$f > G/$f; done
#   FIVE="--data OUT/v13 --data OUT/v11 --data OUT/v12 --data OUT/v16 --data OUT/v17"
#   NINE="$FIVE --data OUT/v41 --data OUT/v42 --data OUT/v43 --data OUT/v44"
#   R="--splits first --tokens block --local-width 32 --cues --cue-set 5 --cue-expert 0.5 --cue-expert-kind trees
#      --epochs 6 --patience 3 --lr 5e-4 --warm-start G"
#   for s in 0 1; do
#     adcreative inspect train $FIVE $R --seed $s --out A$s --decision-groups reject-family
#     adcreative inspect train $NINE $R --seed $s --out B$s --decision-groups floor
#   done
#   adcreative inspect ensemble --member A0 --member A1 --member B0 --member B1 $NINE --splits first \
#       --decision-groups floor --real-bias --out MODEL
# (the shipped model's real-product floor, 0.9241, was set apart from these sets: its README.)
# Overrides (environment), for tests and smaller sets:
#   SETS_DATA     folder holding products/ and products-extra/ (default: ../shared/data beside the repository)
#   SETS_SKUS     procedural and fitted SKUs per set, instead of 30/30/50/30/30 (and 30 for v41-v44)
#   SETS_RENDERERS (the five families)
#   SETS_WORKERS  (2)
#   SETS_STUDIO_COPIES  matted studio copies of each real cutout (dataset synth --studio-copies; default 0, as the
#                 shipped model's sets were made; twenty-fifth and twenty-sixth rounds)
#   PYTHON        (python3)
# A set folder that exists already is resumed by dataset synth.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: scripts/rfnet_sets.sh OUT [v11,v12,v13,v16,v17,v41,v42,v43,v44]"
out=${1:?$usage}
which=${2:-v11,v12,v13,v16,v17,v41,v42,v43,v44}
workers=${SETS_WORKERS:-2}
copies=${SETS_STUDIO_COPIES:-0}
[[ $copies =~ ^[0-9]+$ ]] || {
  echo "rfnet_sets.sh: SETS_STUDIO_COPIES must be a whole number, not '$copies'" >&2; exit 2; }
renderers=${SETS_RENDERERS:-compositor,photoset,softfocus,perspective,poster}
PY=${PYTHON:-python3}
data=${SETS_DATA:-$root/../shared/data}

# each set's seed and procedural (= fitted) SKU count: the one place they are written
declare -A seed=([v11]=13 [v12]=14 [v13]=15 [v16]=16 [v17]=17 [v41]=41 [v42]=42 [v43]=43 [v44]=44)
declare -A skus=([v11]=30 [v12]=30 [v13]=50 [v16]=30 [v17]=30 [v41]=30 [v42]=30 [v43]=30 [v44]=30)
IFS=, read -ra sets <<< "$which"
for name in "${sets[@]}"; do
  [[ -n ${seed[$name]:-} ]] || { echo "rfnet_sets.sh: unknown set '$name' (v11, v12, v13, v16, v17, v41, v42, v43, v44)" >&2; exit 2; }
done
for d in "$data/products" "$data/products-extra"; do
  [[ -d $d ]] || { echo "rfnet_sets.sh: $d is missing (the real products: see ../shared/data)" >&2; exit 2; }
done
[[ -f $data/products-extra/products.csv ]] || {
  echo "rfnet_sets.sh: $data/products-extra/products.csv is missing (ids, titles and categories)" >&2; exit 2; }
mkdir -p "$out"

# products-extra without the two photos the importer's matting flags (one flagged row refuses a whole folder);
# made in a temporary folder and moved into place, so an interrupted copy is never taken for a finished one
extra=$out/products-extra-17
if [[ ! -f $extra/products.csv ]]; then
  rm -rf "$extra.tmp" && mkdir -p "$extra.tmp"
  for f in "$data"/products-extra/*; do
    case $(basename "$f") in
      p045.*|p048.*|products.csv) ;;
      *) if [[ -f $f ]]; then cp "$f" "$extra.tmp/"; fi ;;
    esac
  done
  grep -v '^p045,\|^p048,' "$data/products-extra/products.csv" > "$extra.tmp/products.csv"
  rm -rf "$extra" && mv "$extra.tmp" "$extra"
fi

for name in "${sets[@]}"; do
  n=${SETS_SKUS:-${skus[$name]}}
  start=$(date +%s)
  echo "== $(date +%T) $name: --seed ${seed[$name]}, procedural:$n + fitted:$n, studio copies $copies"
  "$PY" -m adcreative dataset synth --products "$data/products" --meta "$root/tests/data/jd_products.json" \
    --products "$extra" --colourways 3 --colourways-of real --products sample --products "procedural:$n" \
    --products "fitted:$n" --per-class 1 --degrade 0.8 --mirror 0 --seed "${seed[$name]}" --workers "$workers" \
    --test-products 1,5,p013,p017,p023,p026,p047 --renderers "$renderers" --studio-copies "$copies" --out "$out/$name"
  echo "== $(date +%T) $name done in $(( $(date +%s) - start )) s"
  "$PY" -m adcreative dataset info "$out/$name"
done
