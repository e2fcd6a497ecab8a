"""Tiny random-weight text encoders saved with ``save_pretrained`` (offline stand-ins for data2vec-text & co.).

Each builder writes a complete ``transformers`` model folder (config, safetensors weights, tokenizer files)
that ``AutoModel`` / ``AutoTokenizer`` load with ``local_files_only=True``:

* data2vec-text (the DMF paper's encoder, arXiv 2211.00933 Sec. 3.3) and RoBERTa: byte-level BPE tokenizer
  trained here with the ``tokenizers`` library, wrapped as ``RobertaTokenizerFast`` (``<pad>`` id 1, position
  ids offset by the padding id, as in the real checkpoints);
* BERT: WordPiece tokenizer trained here, wrapped as ``BertTokenizerFast`` (``[PAD]`` id 0, token type ids).

Models: hidden 32, 2 layers, 2 heads, intermediate 64, 40 positions (so MAX_TOKENS above 38 for the
RoBERTa-style models is rejected). Weights are random (``torch.manual_seed(seed)``).
"""

from __future__ import annotations

import os

import torch

HIDDEN = 32
MAX_POSITIONS = 40
SENTENCES = [
    "a man in a red jacket and black trousers walks past the camera",
    "a woman with long hair wears a blue dress and white shoes",
    "person carrying a backpack, short sleeves, grey shorts, sunny street",
    "female, long black hair, green coat, dark trousers, holding a bag",
    "male, short hair, yellow shirt, blue jeans, light shoes, at night",
]


def _bpe_tokenizer(folder: str):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES, vocab_size=400, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    os.makedirs(folder, exist_ok=True)
    bpe.save_model(folder)  # vocab.json, merges.txt
    tokenizer = RobertaTokenizerFast(vocab=os.path.join(folder, "vocab.json"),
                                     merges=os.path.join(folder, "merges.txt"), model_max_length=MAX_POSITIONS - 2)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _wordpiece_tokenizer(folder: str):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(SENTENCES, vocab_size=300, min_frequency=1, show_progress=False)
    os.makedirs(folder, exist_ok=True)
    wordpiece.save_model(folder)  # vocab.txt
    tokenizer = BertTokenizerFast(vocab=os.path.join(folder, "vocab.txt"), model_max_length=MAX_POSITIONS)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _shape(tokenizer) -> dict:
    return dict(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id)


def save_weights(folder: str, family: str, seed: int) -> None:
    """(Re-)write random weights of ``family`` ("data2vec-text", "roberta", "bert") into an existing folder."""
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        Data2VecTextConfig,
        Data2VecTextModel,
        RobertaConfig,
        RobertaModel,
    )

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    classes = {"data2vec-text": (Data2VecTextConfig, Data2VecTextModel), "roberta": (RobertaConfig, RobertaModel),
               "bert": (BertConfig, BertModel)}
    config_cls, model_cls = classes[family]
    extra = {} if family == "bert" else {"bos_token_id": tokenizer.bos_token_id,
                                        "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(seed)
    model_cls(config_cls(**_shape(tokenizer), **extra)).eval().save_pretrained(folder)


def make_text_encoder(folder: str, family: str, seed: int = 0) -> str:
    """Write a tiny ``family`` encoder + tokenizer folder at ``folder``; returns ``folder``."""
    if family == "bert":
        _wordpiece_tokenizer(folder)
    else:
        _bpe_tokenizer(folder)
    save_weights(folder, family, seed)
    return folder
