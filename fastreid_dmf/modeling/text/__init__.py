"""Text pipeline shared by every method: description -> tokens -> encoder features (DMF Eq. 5 before projection).

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5 reads ``tokens -> encoder -> projection``; the
projection belongs to the method, the rest is here, one job per module:

* ``loader``: resolve ``MODEL.DMF.TEXT_ENCODER.NAME`` (folder, ``pkg://``, hub cache) and load + check the
  tokenizer and model (:func:`load_text_encoder`, :func:`resolve_text_encoder_path`,
  :func:`check_tokenizer_files`, :func:`check_tokenizer_vocabulary`, :func:`check_text_encoder`);
* ``encoder``: tokenise + encode, trainable or frozen (:class:`TokenEncoder`: texts -> ``(B, L, D_t)``
  features + ``(B, L)`` mask);
* ``feature_cache``: the one cache object of a frozen encoder's features (:class:`TextFeatureCache`:
  memory, shard files, their lifetime and :class:`TextCacheStats`);
* ``shard_store``: the shard files on disk (:class:`ShardStore`, used by the cache);
* ``fingerprint``: what the features depend on (:func:`encoder_fingerprint`) and :class:`FileHashCache`;
* ``text_encoder``: :class:`TextTokenEncoder` (the three composed, built from the config by
  :func:`build_text_encoder`).
"""

from .encoder import TokenEncoder
from .feature_cache import (
    CACHE_DIR_KEY,
    TextCacheStats,
    TextFeatureCache,
    open_feature_cache,
    resolve_text_cache_dir,
)
from .fingerprint import CACHE_FORMAT_VERSION, FileHashCache, encoder_files, encoder_fingerprint
from .loader import (
    LoadedTextEncoder,
    check_text_encoder,
    check_tokenizer_files,
    check_tokenizer_vocabulary,
    load_text_encoder,
    local_model_folder,
    resolve_text_encoder_path,
)
from .shard_store import ShardLoad, ShardStore, current_rank
from .text_encoder import TextTokenEncoder, build_text_encoder

__all__ = ["TokenEncoder", "CACHE_DIR_KEY", "TextCacheStats", "TextFeatureCache", "open_feature_cache",
           "resolve_text_cache_dir", "CACHE_FORMAT_VERSION", "FileHashCache", "encoder_fingerprint", "encoder_files",
           "LoadedTextEncoder", "check_text_encoder", "check_tokenizer_files", "check_tokenizer_vocabulary",
           "load_text_encoder", "local_model_folder", "resolve_text_encoder_path", "ShardLoad", "ShardStore",
           "current_rank", "TextTokenEncoder", "build_text_encoder"]
