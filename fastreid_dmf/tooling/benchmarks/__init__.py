"""Reproduction and benchmark tooling (not imported by ``import fastreid_dmf``).

* :mod:`.ablation`: DMF Table 1 at demo scale (pre-training variants, identical fine-tuning,
  fast-reid and hand-made baselines, several seeds); also the main job's table.
* :mod:`.image_verification`: cost of fully decoding every training image (``DATASETS.VERIFY_IMAGES``)
  against PIL's header-only ``verify()``.
* :mod:`.mmet_speed`: MMET's training iteration per task (visual, textual, visual-textual) against DMF's,
  and the cost of MMET's data-path masking (``tools/benchmark_mmet_speed.py``).
* :mod:`.loop_speed`: DMF's iteration through fast-reid's training loop (data loading, optimizer, hooks)
  against its bare forward + backward, its backbone against fast-reid's and timm's ViT, and the frozen
  text encoder with a cold and a warm feature cache (``tools/benchmark_loop_speed.py``).
* :mod:`.json_report`: printing JSON results, and report folders that are never overwritten.
"""
