#!/usr/bin/env bash
# The main job, end to end on a fresh machine:
#   set up .venv -> generate the bundled synthetic benchmark (once) ->
#   one table through fast-reid's trainer and evaluator: the untrained model, the hand-made colour-histogram
#   matcher, fast-reid's Baseline with a ViT of the same size (no text), and DMF fine-tuned after no
#   pre-training, image-only pre-training and text + image pre-training (DMF Table 1 rows) -> table.md + chart.png.
#   The models with a text branch are also scored on text-to-image retrieval (descriptions -> gallery images),
#   printed as a second table; tools/look_at_results.sh then draws ranking lists, attention maps and person
#   search by description from the trained models into <run>/figures.
# Every run writes to a new folder output/demo/<timestamp>/ (nothing is overwritten).
# With --mmet the table gets one more row: MMET pre-trained on the same source (visual, textual and
# visual-textual tasks with Masked Multimodal Modeling) and fine-tuned with the same recipe (adds ~15 min).
# The same rows over 3 seeds, plus text-only pre-training and a ResNet-18 baseline:
#   tools/benchmark_pretraining_ablation.py --out output/ablation --seeds 0 1 2
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=()
for arg in "$@"; do
  case "$arg" in
    --mmet) EXTRA+=(mmet) ;;
    *) echo "usage: bash tools/run_demo.sh [--mmet]" >&2; exit 2 ;;
  esac
done
bash tools/setup_env.sh
PY=.venv/bin/python
export FASTREID_DATASETS=${FASTREID_DATASETS:-datasets}
if [ ! -d "$FASTREID_DATASETS/FineGPR" ] || [ ! -d "$FASTREID_DATASETS/synth_market" ] || [ ! -d "$FASTREID_DATASETS/synth_msmt" ]; then
  "$PY" tools/make_demo_data.py --root "$FASTREID_DATASETS" --preset demo --seed 0
fi
RUN=${RUN_DIR:-output/demo/$(date +%Y%m%d-%H%M%S)}
start=$(date +%s)
"$PY" tools/benchmark_pretraining_ablation.py --out "$RUN" --seeds 0 \
  --variants untrained color_histogram fastreid_vit dmf_none dmf_image dmf_text_image ${EXTRA[@]+"${EXTRA[@]}"}
end=$(date +%s)
bash tools/look_at_results.sh "$RUN" > "$RUN/figures.log" 2>&1 || { tail -5 "$RUN/figures.log"; exit 1; }
echo "Training + testing took $((end - start)) s, figures $(($(date +%s) - end)) s; table.md, chart.png, results.json,"
echo "every run's log and figures/ (ranking lists, attention maps, search by description) in $RUN"
