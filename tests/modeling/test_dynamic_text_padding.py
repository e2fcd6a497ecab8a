"""Text batches are padded to their longest description, not to MAX_TOKENS; the attention mask makes both equal."""

import pytest
import torch
from fastreid.modeling import build_model
from fastreid.utils.events import EventStorage

from tests.shared import MINILM, small_dmf_cfg

SHORT = "a man in red"
LONG = "a woman with long hair who wears a blue coat, black trousers, light shoes and carries a bag"


def _pad_to(feats: torch.Tensor, valid: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token features (zeros) and the valid mask (False) to ``length`` tokens."""
    extra = length - feats.shape[1]
    return (torch.cat((feats, feats.new_zeros(feats.shape[0], extra, feats.shape[2])), dim=1),
            torch.cat((valid, valid.new_zeros(valid.shape[0], extra)), dim=1))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(small_dmf_cfg(MINILM))


def _losses_and_grads(model, batch):
    model.train()
    model.zero_grad(set_to_none=True)
    with EventStorage(0):
        losses = model(batch)
    sum(losses.values()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def test_a_text_batch_is_padded_to_its_longest_description(model):
    encoder = model.backbone.text_encoder
    feats, valid = encoder([SHORT, LONG])
    longest = int(encoder.tokenize([LONG])["input_ids"].shape[1])
    assert feats.shape[1] == valid.shape[1] == longest < encoder.max_tokens
    assert valid[1].all() and int(valid[0].sum()) == int(encoder.tokenize([SHORT])["input_ids"].shape[1])


def test_padding_to_max_tokens_gives_the_same_losses_gradients_and_features(model, monkeypatch):
    batch = {"images": torch.rand(6, 3, 32, 16) * 255, "targets": torch.tensor([0, 0, 1, 1, 2, 2]),
             "modalities": torch.tensor([0, 1, 0, 1, 1, 0]), "texts": ["", SHORT, "", LONG, "person two", ""]}
    dynamic_losses, dynamic_grads = _losses_and_grads(model, batch)
    model.eval()
    with torch.no_grad():
        dynamic_feats = model.encode_texts([SHORT, LONG, "person two"])

    encoder = model.backbone.text_encoder
    original = type(encoder).forward
    monkeypatch.setattr(type(encoder), "forward",
                        lambda self, texts, device=None: _pad_to(*original(self, texts, device), self.max_tokens))
    assert encoder([SHORT])[0].shape[1] == encoder.max_tokens  # now statically padded
    static_losses, static_grads = _losses_and_grads(model, batch)
    model.eval()
    with torch.no_grad():
        static_feats = model.encode_texts([SHORT, LONG, "person two"])

    assert dynamic_losses.keys() == static_losses.keys()
    for key in dynamic_losses:
        assert torch.allclose(dynamic_losses[key], static_losses[key], atol=1e-5), key
    assert dynamic_grads.keys() == static_grads.keys()
    for name in dynamic_grads:
        if name == "backbone.text_pos_embed":  # rows past the longest description get no gradient either way
            length = 1 + int(encoder.tokenize([LONG])["input_ids"].shape[1])
            assert torch.all(static_grads[name][:, length:] == 0)
            assert torch.allclose(dynamic_grads[name][:, :length], static_grads[name][:, :length], atol=1e-5)
            continue
        assert torch.allclose(dynamic_grads[name], static_grads[name], atol=1e-5), name
    assert torch.allclose(dynamic_feats, static_feats, atol=1e-5)
