"""Text encoder families (data2vec-text, BERT, RoBERTa) and the persistent text-feature cache.

All encoders are tiny random-weight models written by ``tests/modeling/text_fixtures.py``; nothing is downloaded.
"""

import gc
import json
import logging
import os
import shutil

import pytest
import torch
from fastreid.modeling.meta_arch import build_model
from fastreid.utils.events import EventStorage

from fastreid_dmf.modeling.dmf.backbone import DMFBackbone
from fastreid_dmf.modeling.text import (
    FileHashCache,
    TextTokenEncoder,
    build_text_encoder,
    encoder_fingerprint,
    shard_store,
)
from tests.modeling.text_fixtures import HIDDEN, SENTENCES, make_text_encoder, save_weights
from tests.shared import MINILM, small_dmf_cfg

FAMILIES = ["data2vec-text", "bert", "roberta"]
MODEL_CLASSES = {"data2vec-text": "Data2VecTextModel", "bert": "BertModel", "roberta": "RobertaModel"}
SMALL = dict(img_size=(32, 16), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2)
TEXTS = ["a man in red", SENTENCES[1], SENTENCES[0] + " " + SENTENCES[2]]  # the last one is truncated
MAX_TOKENS = 24
LOGGER = "fastreid_dmf.modeling.text"  # the text package (its modules log to child loggers)


@pytest.fixture(scope="session")
def encoder_dirs(tmp_path_factory):
    """{family: folder} of tiny saved encoders, built once."""
    root = tmp_path_factory.mktemp("text_encoders")
    return {family: make_text_encoder(str(root / family), family, seed=1) for family in FAMILIES}


@pytest.fixture
def d2v_dir(encoder_dirs, tmp_path):
    """A private copy of the data2vec-text folder (tests may re-save its weights)."""
    return shutil.copytree(encoder_dirs["data2vec-text"], tmp_path / "d2v")


def _count_calls(encoder: TextTokenEncoder, monkeypatch) -> list:
    """Record the batch size of every call of the underlying transformers model."""
    calls = []
    module = encoder.module
    original = module.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "forward", counting)
    return calls


def _shards(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("shard-"))


@pytest.mark.parametrize("family", FAMILIES)
def test_encoder_family_loads_offline_and_matches_the_transformers_model(encoder_dirs, family):
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dirs[family]
    encoder = TextTokenEncoder(folder, max_tokens=MAX_TOKENS, freeze=True)
    assert type(encoder.module).__name__ == MODEL_CLASSES[family]
    tokens, valid = encoder(TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    assert tokens.dtype == torch.float32 and valid.dtype == torch.bool
    assert tokens.shape == (3, batch["input_ids"].shape[1], HIDDEN) and batch["input_ids"].shape[1] == MAX_TOKENS
    assert torch.equal(valid, batch["attention_mask"].bool())
    assert torch.all(tokens[~valid] == 0), "padding positions are zero"
    reference = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
    # Same weights, same inputs, same CPU kernels: equal up to float32 rounding.
    assert torch.allclose(tokens[valid], expected[valid], atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_does_not_change_token_features(encoder_dirs, family):
    # RoBERTa-style position ids start after the padding id; with right padding and the attention mask a
    # description's features do not depend on the batch it is in.
    encoder = TextTokenEncoder(encoder_dirs[family], max_tokens=MAX_TOKENS, freeze=False).eval()
    with torch.no_grad():
        alone, alone_valid = encoder(TEXTS[:1])
        batched, batched_valid = encoder(TEXTS)
    n = int(alone_valid.sum())
    assert int(batched_valid[0].sum()) == n and not batched_valid[0, n:].any()
    assert torch.allclose(alone[0, :n], batched[0, :n], atol=1e-5)
    assert torch.all(batched[0, n:] == 0)


@pytest.mark.parametrize("family", FAMILIES)
def test_unfrozen_encoder_is_trained_through_forward_text_and_saved(encoder_dirs, family):
    from transformers import AutoModel

    encoder = TextTokenEncoder(encoder_dirs[family], max_tokens=MAX_TOKENS, freeze=False)
    model = DMFBackbone(**SMALL, text_dim=HIDDEN, max_text_tokens=MAX_TOKENS, text_encoder=encoder)
    pretrained = AutoModel.from_pretrained(encoder_dirs[family], local_files_only=True).state_dict()
    state = model.state_dict()
    encoder_keys = [k for k in state if k.startswith("text_encoder.encoder.")]
    assert encoder_keys, "fine-tuned encoder weights are saved with the model"
    for key in encoder_keys:
        name = key[len("text_encoder.encoder."):]
        assert torch.equal(state[key], pretrained[name]), f"{key}: pre-trained weight changed by model init"
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(encoder_keys) & names, "encoder parameters are trainable parameters of the model"
    model.forward_text(TEXTS).pow(2).sum().backward()
    layer = encoder.encoder.encoder.layer[0].attention.self.query.weight
    embeddings = encoder.encoder.embeddings.word_embeddings.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    assert encoder.cache_size == 0 and encoder.cache_folder is None, "a trained encoder is never cached"


def test_frozen_encoder_stays_out_of_state_dict_and_gradients(encoder_dirs):
    encoder = TextTokenEncoder(encoder_dirs["data2vec-text"], max_tokens=MAX_TOKENS, freeze=True)
    model = DMFBackbone(**SMALL, text_dim=HIDDEN, max_text_tokens=MAX_TOKENS, text_encoder=encoder)
    assert not any(k.startswith("text_encoder") for k in model.state_dict())
    assert not any(n.startswith("text_encoder") for n, _ in model.named_parameters())
    model.forward_text(TEXTS).pow(2).sum().backward()
    assert all(p.grad is None for p in encoder.module.parameters())
    assert model.text_proj.weight.grad.abs().sum() > 0


def test_max_tokens_beyond_position_embeddings_is_rejected(encoder_dirs):
    # 40 positions minus RoBERTa's padding offset (pad id 1 + 1) leave 38 tokens.
    with pytest.raises(ValueError, match=r"MAX_TOKENS=39.*<= 38"):
        TextTokenEncoder(encoder_dirs["data2vec-text"], max_tokens=39)
    TextTokenEncoder(encoder_dirs["bert"], max_tokens=40)  # BERT positions have no offset


def test_restart_reads_identical_features_from_disk_without_running_the_encoder(d2v_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    tokens, valid = first(TEXTS)
    assert first.flush() == len(TEXTS)
    folder = first.cache_folder
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["encoder"] == str(d2v_dir) and manifest["entries"] == 3
    assert manifest["model_class"] == "Data2VecTextModel" and manifest["fingerprint"] == first.fingerprint

    restarted = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    calls = _count_calls(restarted, monkeypatch)
    again, again_valid = restarted(TEXTS)
    assert calls == [], "no encoder call after a restart"
    assert torch.equal(again, tokens) and torch.equal(again_valid, valid), "bit-identical float32 features"
    stats = restarted.cache_stats
    assert (stats.loaded_from_disk, stats.disk_hits, stats.hits, stats.misses) == (3, 3, 3, 0)
    assert restarted.cache_folder == folder and restarted.flush() == 0


def test_changed_weights_or_max_tokens_use_a_new_folder_and_keep_the_old(d2v_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    tokens, _ = first(TEXTS)
    first.flush()
    old_folder, old_shards = first.cache_folder, _shards(first.cache_folder)

    shorter = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS - 4, cache_dir=str(cache))
    assert shorter.cache_folder != old_folder
    calls = _count_calls(shorter, monkeypatch)
    shorter(TEXTS)
    assert calls == [3] and shorter.cache_stats.misses == 3

    save_weights(str(d2v_dir), "data2vec-text", seed=2)  # same folder, new random weights
    retrained = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    assert retrained.fingerprint != first.fingerprint and retrained.cache_folder != old_folder
    calls = _count_calls(retrained, monkeypatch)
    new_tokens, _ = retrained(TEXTS)
    assert calls == [3] and retrained.cache_stats.loaded_from_disk == 0
    assert not torch.allclose(new_tokens, tokens)
    assert _shards(old_folder) == old_shards, "the old encoder's folder is kept untouched"


def test_edited_description_is_the_only_miss(d2v_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    first(TEXTS)
    first.flush()
    restarted = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    calls = _count_calls(restarted, monkeypatch)
    edited = [TEXTS[0], TEXTS[1] + ".", TEXTS[2]]
    restarted(edited)
    assert calls == [1]
    assert (restarted.cache_stats.hits, restarted.cache_stats.misses) == (2, 1)


def test_corrupt_shard_is_named_in_a_warning_kept_and_recomputed(d2v_dir, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    first = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    tokens, _ = first(TEXTS)
    first.flush()
    shard = os.path.join(first.cache_folder, _shards(first.cache_folder)[0])
    with open(shard, "r+b") as handle:
        handle.truncate(os.path.getsize(shard) // 2)  # a partial file, as after a disk-full copy

    restarted = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    calls = _count_calls(restarted, monkeypatch)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        again, _ = restarted(TEXTS)
    assert shard in caplog.text and "skipping shard file" in caplog.text
    assert calls == [3] and restarted.cache_stats.skipped_files == 1
    assert torch.allclose(again, tokens, atol=1e-6)
    assert os.path.exists(shard), "a bad file is reported, never deleted"


def test_pending_features_are_written_every_n_texts_and_when_the_encoder_is_collected(d2v_dir, tmp_path):
    cache = tmp_path / "cache"
    texts = [f"{s} number {i}" for i, s in enumerate(SENTENCES)]
    encoder = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache), flush_every=2)
    encoder(texts)
    folder = encoder.cache_folder
    assert len(_shards(folder)) == 2, "5 new texts with flush_every=2: two shards now, one text pending"
    del encoder
    gc.collect()
    assert len(_shards(folder)) == 3, "the last text is written when the encoder is garbage-collected"
    restarted = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(cache))
    restarted(texts)
    assert restarted.cache_stats.misses == 0 and restarted.cache_stats.loaded_from_disk == 5
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")], "no temporary files left"


def test_other_ranks_write_their_own_shards_and_not_the_manifest(d2v_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(shard_store, "current_rank", lambda: 1)
    encoder = TextTokenEncoder(str(d2v_dir), max_tokens=MAX_TOKENS, cache_dir=str(tmp_path / "cache"))
    encoder(TEXTS)
    encoder.flush()
    assert [n.split("-")[1] for n in _shards(encoder.cache_folder)] == ["r001"]
    assert not os.path.exists(os.path.join(encoder.cache_folder, "manifest.json"))


def test_file_hashes_are_remembered_and_redone_when_a_file_changes(d2v_dir, tmp_path):
    path = str(tmp_path / "file_hashes.json")
    hashes = FileHashCache(path)
    first, files = encoder_fingerprint(str(d2v_dir), "Data2VecTextModel", MAX_TOKENS, hashes)
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt"} <= set(files)
    hashes.save()
    reloaded = FileHashCache(path)
    assert encoder_fingerprint(str(d2v_dir), "Data2VecTextModel", MAX_TOKENS, reloaded)[0] == first
    assert reloaded.hashed_bytes == 0, "unchanged files are not hashed again"
    with open(os.path.join(d2v_dir, "tokenizer_config.json"), "a") as handle:
        handle.write("\n")
    changed, _ = encoder_fingerprint(str(d2v_dir), "Data2VecTextModel", MAX_TOKENS, reloaded)
    assert changed != first and 0 < reloaded.hashed_bytes < 10_000


def test_cache_dir_setting_none_empty_and_path(d2v_dir, tmp_path):
    cfg = small_dmf_cfg(str(d2v_dir))
    cfg.merge_from_list(["MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", MAX_TOKENS, "OUTPUT_DIR", str(tmp_path / "out"),
                         "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", "none"])
    encoder = build_text_encoder(cfg)
    encoder(TEXTS)
    assert encoder.cache_folder is None and encoder.flush() == 0 and encoder.cache_size == 3
    assert not (tmp_path / "out").exists(), "CACHE_DIR none writes nothing"

    cfg.merge_from_list(["MODEL.DMF.TEXT_ENCODER.CACHE_DIR", ""])
    encoder = build_text_encoder(cfg)
    assert encoder.cache_folder.startswith(str(tmp_path / "out" / "text_feature_cache") + os.sep)

    cfg.merge_from_list(["MODEL.DMF.TEXT_ENCODER.CACHE_DIR", str(tmp_path / "shared")])
    assert build_text_encoder(cfg).cache_folder.startswith(str(tmp_path / "shared") + os.sep)

    (tmp_path / "a_file").write_text("not a folder")
    cfg.merge_from_list(["MODEL.DMF.TEXT_ENCODER.CACHE_DIR", str(tmp_path / "a_file")])
    with pytest.raises(NotADirectoryError, match="MODEL.DMF.TEXT_ENCODER.CACHE_DIR"):
        build_text_encoder(cfg)


def test_unfrozen_encoder_ignores_the_cache_dir_and_says_so(d2v_dir, tmp_path, caplog):
    cfg = small_dmf_cfg(str(d2v_dir))
    cfg.merge_from_list(["MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", MAX_TOKENS, "MODEL.DMF.TEXT_ENCODER.FREEZE", False,
                         "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", str(tmp_path / "cache")])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        encoder = build_text_encoder(cfg)
    encoder(TEXTS)
    assert encoder.flush() == 0 and not (tmp_path / "cache").exists()
    assert caplog.text.count("FREEZE=False") == 1


def test_dmf_model_built_by_fastreid_reuses_the_persistent_cache(d2v_dir, tmp_path, monkeypatch):
    cfg = small_dmf_cfg(str(d2v_dir))
    cfg.merge_from_list(["MODEL.DMF.TEXT_DIM", HIDDEN, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", MAX_TOKENS,
                         "OUTPUT_DIR", str(tmp_path / "run"), "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", ""])
    batch = {"images": torch.rand(4, 3, 32, 16) * 255, "targets": torch.tensor([0, 0, 1, 1]),
             "modalities": torch.tensor([1, 0, 1, 0]), "texts": [TEXTS[0], "", TEXTS[1], ""]}
    model = build_model(cfg).train()
    with EventStorage(0):
        sum(model(batch).values()).backward()
    encoder = model.backbone.text_encoder
    tokens, _ = encoder(TEXTS[:2])
    assert encoder.flush() == 2
    assert encoder.cache_folder.startswith(str(tmp_path / "run" / "text_feature_cache"))

    restarted = build_model(cfg).train()
    calls = _count_calls(restarted.backbone.text_encoder, monkeypatch)
    with EventStorage(0):
        losses = restarted(batch)
    assert calls == [] and torch.isfinite(sum(losses.values()))
    assert torch.equal(restarted.backbone.text_encoder(TEXTS[:2])[0], tokens)
    assert restarted.backbone.text_encoder.cache_stats.disk_hits == 4  # 2 texts, in two calls


@pytest.mark.parametrize("factor", [0.1, 1.0])
def test_fine_tuned_encoder_trains_at_its_lr_factor_and_everything_else_at_fastreids_lr(d2v_dir, factor):
    from fastreid_dmf.engine.trainer import DMFTrainer

    cfg = small_dmf_cfg(str(d2v_dir))
    cfg.merge_from_list(["MODEL.DMF.TEXT_DIM", HIDDEN, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", MAX_TOKENS,
                         "MODEL.DMF.TEXT_ENCODER.FREEZE", False, "MODEL.DMF.TEXT_ENCODER.LR_FACTOR", factor,
                         "SOLVER.OPT", "SGD", "SOLVER.BASE_LR", 0.01, "SOLVER.BIAS_LR_FACTOR", 2.0,
                         "SOLVER.HEADS_LR_FACTOR", 1.0])
    model = build_model(cfg)
    optimizer, _ = DMFTrainer.build_optimizer(cfg, model)
    # fast-reid's ContiguousParams packs each LR into one flat buffer; map buffers back by size.
    encoder_numel = sum(p.numel() for p in model.backbone.text_encoder.module.parameters())
    lr_numel: dict[float, int] = {}
    for group in optimizer.param_groups:
        lr = round(group["lr"], 8)
        lr_numel[lr] = lr_numel.get(lr, 0) + sum(p.numel() for p in group["params"])
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(lr_numel.values()) == total
    if factor == 1.0:
        assert set(lr_numel) == {0.01, 0.02}
    else:
        assert set(lr_numel) == {0.01, 0.02, 0.001, 0.002}  # weights / biases, times the factor for the encoder
        assert lr_numel[0.001] + lr_numel[0.002] == encoder_numel


# --------------------------------------------------------------------------- tokenizer files and vocabulary

TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


def _linked_copy(source: str, target, drop=TOKENIZER_FILES):
    """``target`` with a symlink to every entry of ``source`` but ``drop`` (the MiniLM weights are 90 MB)."""
    os.makedirs(target)
    for entry in os.listdir(source):
        if entry not in drop:
            os.symlink(os.path.join(source, entry), os.path.join(target, entry))
    return target


@pytest.fixture
def weights_never_load(monkeypatch):
    """Fail the test if a text encoder's weights are read (checks must come first)."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("AutoModel.from_pretrained was called")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)


def _minilm_folder() -> str:
    from fastreid_dmf.modeling.text import resolve_text_encoder_path

    return resolve_text_encoder_path(MINILM)


def test_minilm_folder_without_tokenizer_files_is_refused_before_its_weights_load(tmp_path, weights_never_load):
    # transformers itself accepts such a folder: BertTokenizer with its 5 special tokens, every word [UNK].
    folder = _linked_copy(_minilm_folder(), tmp_path / "minilm")
    with pytest.raises(FileNotFoundError) as info:
        TextTokenEncoder(str(folder), max_tokens=32)
    message = str(info.value)
    assert message.startswith(f"MODEL.DMF.TEXT_ENCODER.NAME={str(folder)!r}: text-encoder folder {str(folder)!r} "
                              "has no tokenizer files; expected tokenizer.json, vocab.txt (WordPiece), vocab.json + "
                              "merges.txt (byte-level BPE) or a sentencepiece *.model file")
    assert "\n" not in message


def test_pkg_encoder_folder_without_tokenizer_files_is_refused(tmp_path, monkeypatch, weights_never_load):
    package = tmp_path / "dmf_test_tokenizerless_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _linked_copy(_minilm_folder(), package / "model")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"NAME='pkg://dmf_test_tokenizerless_pkg/model': text-encoder "
                                                r"folder '.*dmf_test_tokenizerless_pkg/model' has no tokenizer files"):
        TextTokenEncoder("pkg://dmf_test_tokenizerless_pkg/model", max_tokens=32)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_encoder_without_tokenizer_files_is_refused(encoder_dirs, family, tmp_path, weights_never_load):
    folder = _linked_copy(encoder_dirs[family], tmp_path / family)
    with pytest.raises(FileNotFoundError, match="has no tokenizer files"):
        TextTokenEncoder(str(folder), max_tokens=MAX_TOKENS)


def test_bpe_vocabulary_without_its_merges_is_refused(encoder_dirs, tmp_path, weights_never_load):
    folder = _linked_copy(encoder_dirs["roberta"], tmp_path / "roberta", drop=("merges.txt", "tokenizer.json"))
    with pytest.raises(FileNotFoundError, match="vocab.json \\+ merges.txt"):
        TextTokenEncoder(str(folder), max_tokens=MAX_TOKENS)


def test_minilm_with_a_truncated_vocabulary_is_refused_before_its_weights_load(tmp_path, weights_never_load):
    source = _minilm_folder()
    folder = _linked_copy(source, tmp_path / "minilm", drop=("vocab.txt", "tokenizer.json"))
    with open(os.path.join(source, "vocab.txt"), encoding="utf-8") as handle:
        head = handle.read().splitlines()[:1000]  # [PAD], [unused*], [UNK], [CLS], [SEP], [MASK], a few words
    (folder / "vocab.txt").write_text("\n".join(head) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        TextTokenEncoder(str(folder), max_tokens=32)
    message = str(info.value)
    assert message.startswith(f"MODEL.DMF.TEXT_ENCODER.NAME={str(folder)!r}: the tokenizer of {str(folder)!r} has "
                              "1000 tokens for a model with vocab_size=30522; expected at least 50% of vocab_size")
    assert "vocab.txt" in message and "\n" not in message


def test_intact_minilm_is_accepted_with_its_whole_vocabulary(text_encoder):
    tokenizer = text_encoder.tokenizer
    assert len(tokenizer) == text_encoder.module.config.vocab_size == 30522
    ids = tokenizer("a man in a red jacket and black trousers")["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) >= 11  # [CLS], >= 1 piece per word, [SEP]


def test_vocabulary_rule_is_half_the_embedding_table():
    from types import SimpleNamespace

    from fastreid_dmf.modeling.text import check_tokenizer_vocabulary

    check_tokenizer_vocabulary("enc", "/enc", range(500), SimpleNamespace(vocab_size=1000))
    with pytest.raises(ValueError, match="has 499 tokens for a model with vocab_size=1000"):
        check_tokenizer_vocabulary("enc", "/enc", range(499), SimpleNamespace(vocab_size=1000))
    check_tokenizer_vocabulary("enc", "/enc", range(5), SimpleNamespace())  # no vocab_size: nothing to compare
