"""Defaults for every config key fastreid-dmf adds to fast-reid's config.

Mirrors fast-reid's plugin idiom (``projects/*/config.py``: ``add_xxx_config``).
README.md, "Config keys", documents each key.
"""

from __future__ import annotations

from fastreid.config import CfgNode as CN

__all__ = ["add_dmf_config", "check_dmf_config"]


def add_dmf_config(cfg: CN) -> None:
    """Add the DMF keys, with defaults, to a fast-reid config in place.

    Keys (defaults in brackets):

    * ``MODEL.DMF.EMBED_DIM`` [768]: width D of the shared transformer.
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
    * ``MODEL.DMF.SKIP_LOAD_KEYS`` [()]: prefixes of ``MODEL.WEIGHTS`` keys not
      loaded (fine-tuning re-initialises the identity classifier ``heads.weight``).
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
    * ``SEED`` [-1]: >= 0 seeds Python/NumPy/torch at start-up and the
      multimodal sampler (reproducible runs); -1 = fast-reid's random seeding.
    * ``DATASETS.VERIFY_IMAGES`` [True]: open every training image before
      training starts; ``DATASETS.SKIP_UNREADABLE`` [False]: skip unreadable
      images (logged with a count) instead of stopping with an error.
    """
    cfg.MODEL.DMF = CN()
    cfg.MODEL.DMF.EMBED_DIM = 768
    cfg.MODEL.DMF.IMAGE_EMBED_DIM = 0
    cfg.MODEL.DMF.DEPTH = 12
    cfg.MODEL.DMF.NUM_HEADS = 12
    cfg.MODEL.DMF.MLP_RATIO = 4.0
    cfg.MODEL.DMF.QKV_BIAS = True
    cfg.MODEL.DMF.PATCH_SIZE = 16
    cfg.MODEL.DMF.LN_EPS = 1e-6
    cfg.MODEL.DMF.TEXT_ENCODER = CN()
    cfg.MODEL.DMF.TEXT_ENCODER.NAME = ""
    cfg.MODEL.DMF.TEXT_ENCODER.FREEZE = True
    cfg.MODEL.DMF.TEXT_ENCODER.MAX_TOKENS = 64
    cfg.MODEL.DMF.TEXT_ENCODER.CACHE_DIR = ""
    cfg.MODEL.DMF.TEXT_ENCODER.LR_FACTOR = 0.1
    cfg.MODEL.DMF.LAYER_SCALE_INIT = 0.0
    cfg.MODEL.DMF.TEXT_DIM = 384
    cfg.MODEL.DMF.TEST_FEAT = "before"
    cfg.MODEL.DMF.TRIPLET_SQUARED = True
    cfg.MODEL.DMF.SKIP_LOAD_KEYS = ()

    cfg.MODEL.COLOR_HIST = CN()
    cfg.MODEL.COLOR_HIST.NUM_STRIPES = 6  # ColorHistogramMatcher: R equal horizontal stripes (body regions)
    cfg.MODEL.COLOR_HIST.BINS = (8, 4, 4)  # ColorHistogramMatcher: (H, S, V) bins per stripe histogram

    cfg.DATALOADER.TEXT_RATIO = 0.5  # P(text) per instance (Algorithm 1); epoch = N / max(r, 1 - r) instances

    cfg.DATASETS.FINEGPR = CN()
    cfg.DATASETS.FINEGPR.ATTRIBUTE_FILE = "attributes.csv"
    cfg.DATASETS.FINEGPR.TEXT_MODE = "sentence"
    cfg.DATASETS.FINEGPR.TEXT_ENVIRONMENT = True
    cfg.DATASETS.FINEGPR.CAPTION_FILE = "captions.csv"
    cfg.DATASETS.FINEGPR.IMAGES_PER_ID = 0
    cfg.DATASETS.FINEGPR.SUBSET_SEED = 0
    cfg.DATASETS.VTEST_REID = CN()
    cfg.DATASETS.VTEST_REID.ROOT = ""
    cfg.DATASETS.HOLDOUT = CN()
    cfg.DATASETS.HOLDOUT.NUM_IDS = 0  # identities per training set kept out of training, for validation
    cfg.DATASETS.HOLDOUT.SEED = 0  # seed of that draw (same identities in every run)
    cfg.DATASETS.HOLDOUT.NAMES = ()  # training datasets that lose them; () = every dataset in DATASETS.NAMES
    cfg.DATASETS.VERIFY_IMAGES = True
    cfg.DATASETS.SKIP_UNREADABLE = False
    cfg.SEED = -1


def _expect(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"config {key}={value!r}: expected {expected}")


def check_dmf_config(cfg: CN) -> None:
    """Validate DMF keys before anything is built.

    Raises:
        ValueError: a key has a value outside its range; the message names the
            key, the value and what was expected.
    """
    dmf = cfg.MODEL.DMF
    _expect(dmf.TEST_FEAT in ("before", "after"), "MODEL.DMF.TEST_FEAT", dmf.TEST_FEAT, "'before' or 'after'")
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
    if cfg.MODEL.META_ARCHITECTURE == "DMF" or cfg.MODEL.BACKBONE.NAME == "build_fastreid_vit_backbone":
        _expect(cfg.MODEL.BACKBONE.FEAT_DIM == dmf.EMBED_DIM, "MODEL.BACKBONE.FEAT_DIM", cfg.MODEL.BACKBONE.FEAT_DIM,
                f"the transformer width MODEL.DMF.EMBED_DIM={dmf.EMBED_DIM} (the BNNeck head reads FEAT_DIM)")
    if cfg.MODEL.META_ARCHITECTURE == "ColorHistogramMatcher":
        from ..modeling.color_histogram import check_color_hist_params  # lazy, as TEXT_MODES above

        height = cfg.INPUT.SIZE_TEST[0]
        check_color_hist_params(cfg.MODEL.COLOR_HIST.NUM_STRIPES, tuple(cfg.MODEL.COLOR_HIST.BINS),
                                height if height > 0 else None, "the test image height INPUT.SIZE_TEST[0]")
    sampler = cfg.DATALOADER.SAMPLER_TRAIN
    if sampler == "MultimodalIdentitySampler":
        _expect(cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE == 0, "SOLVER.IMS_PER_BATCH",
                cfg.SOLVER.IMS_PER_BATCH, f"a multiple of DATALOADER.NUM_INSTANCE={cfg.DATALOADER.NUM_INSTANCE}")
    if cfg.DATALOADER.TEXT_RATIO > 0 and sampler == "MultimodalIdentitySampler":
        _expect(bool(dmf.TEXT_ENCODER.NAME), "MODEL.DMF.TEXT_ENCODER.NAME", dmf.TEXT_ENCODER.NAME,
                "a text-encoder path when DATALOADER.TEXT_RATIO > 0 (text samples need the encoder)")
