"""MMET's Masked Multimodal Modeling in the data path: what each sample carries, reproducibility, statistics.

The masks are drawn in ``MultimodalReIDDataset.__getitem__`` (``fastreid_dmf/data/mmm.py``) from
``(seed, sample, read count)``, the read count coming from the task sampler's index; so they are checked
here through the dataset, the task sampler's indices, fast-reid's collator and torch's DataLoader.
"""

import itertools
import math
import os

import numpy as np
import pytest
import torch
from fastreid.data.build import fast_batch_collator
from fastreid.modeling.backbones.vision_transformer import PatchEmbed_overlap
from PIL import Image
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from fastreid_dmf.config import load_config
from fastreid_dmf.data.build import build_mmm
from fastreid_dmf.data.masking import IGNORE_INDEX
from fastreid_dmf.data.mmm import MaskedMultimodalModeling, patch_grid
from fastreid_dmf.data.multimodal_dataset import MultimodalReIDDataset
from fastreid_dmf.data.samplers import TaskIdentitySampler
from fastreid_dmf.modeling.mmet.image_encoder import MMETImageEncoder
from fastreid_dmf.multimodal_batch import IMAGE, PAIR, TEXT, encode_index
from tests.modeling.text_fixtures import SENTENCES, make_text_encoder
from tests.shared import DEMO_CONFIGS

IMAGE_SIZE = (64, 32)  # (H, W)
PATCH = 8
GRID = (8, 4)  # 64 / 8 rows x 32 / 8 columns
NUM_PATCHES = GRID[0] * GRID[1]
IMAGE_RATIO = 0.25  # 8 of 32 patches: an integer, so the exact count is round(ratio * N) = ratio * N
TEXT_RATIO = 0.15
MAX_TOKENS = 32
NUM_IDS, PER_ID = 4, 3
N = NUM_IDS * PER_ID


def to_tensor(image: Image.Image) -> torch.Tensor:
    """float (3, H, W) in 0..255, as fast-reid's transforms give (module level: picklable for workers)."""
    array = np.asarray(image.resize((IMAGE_SIZE[1], IMAGE_SIZE[0])), dtype=np.float32)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    """A tiny BERT (WordPiece) folder written by the text fixtures."""
    return make_text_encoder(str(tmp_path_factory.mktemp("mmm_bert")), "bert")


@pytest.fixture(scope="module")
def tokenizer(tokenizer_folder):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
    tokenizer.padding_side = "right"
    return tokenizer


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    """N tiny JPEGs, PER_ID per identity, each with a description (one of the fixture sentences)."""
    root = tmp_path_factory.mktemp("mmm_images")
    result = []
    for index in range(N):
        pid = index // PER_ID
        path = os.path.join(str(root), f"{pid:04d}_{index}.jpg")
        Image.new("RGB", (16, 32), ((pid * 60) % 256, (index * 20) % 256, 90)).save(path, "JPEG")
        result.append((path, pid, index % 2, SENTENCES[index % len(SENTENCES)]))
    return result


def _mmm(tokenizer, seed=0, **kwargs):
    args = dict(image_ratio=IMAGE_RATIO, min_block=2, text_ratio=TEXT_RATIO, seed=seed)
    args.update(kwargs)
    return MaskedMultimodalModeling(tokenizer, MAX_TOKENS, GRID, **args)


def _dataset(items, tokenizer, seed=0):
    return MultimodalReIDDataset(items, to_tensor, IMAGE_SIZE, mmm=_mmm(tokenizer, seed), epoch_length=len(items))


def _reference(tokenizer, text):
    """Unmasked token ids and attention mask, as the dataset tokenises (padded to MAX_TOKENS)."""
    encoded = tokenizer(text, truncation=True, max_length=MAX_TOKENS, padding="max_length")
    return np.asarray(encoded["input_ids"]), np.asarray(encoded["attention_mask"], dtype=bool)


def _masks(sample):
    return sample["patch_mask"], sample["input_ids"], sample["mlm_labels"]


def _same_masks(a, b):
    return all(torch.equal(x, y) for x, y in zip(_masks(a), _masks(b)))


# ---------------------------------------------------------------- what a sample of each task carries


def test_samples_of_each_task_carry_their_masks_and_empty_ones_for_the_missing_modality(items, tokenizer):
    dataset = _dataset(items, tokenizer)
    visual = dataset[encode_index(4, IMAGE, N)]
    textual = dataset[encode_index(4, TEXT, N)]
    pair = dataset[encode_index(4, PAIR, N)]
    assert (visual["modalities"], textual["modalities"], pair["modalities"]) == (IMAGE, TEXT, PAIR)
    for sample in (visual, pair):  # an image: a bool mask over the patch grid, exactly round(ratio * N) masked
        assert sample["patch_mask"].dtype == torch.bool and sample["patch_mask"].shape == (NUM_PATCHES,)
        assert int(sample["patch_mask"].sum()) == round(IMAGE_RATIO * NUM_PATCHES)
        assert sample["images"].abs().sum() > 0
    # The visual sample has no text: all-padding token tensors, nothing to predict.
    assert visual["input_ids"].tolist() == [tokenizer.pad_token_id] * MAX_TOKENS
    assert visual["attention_mask"].tolist() == [0] * MAX_TOKENS
    assert visual["mlm_labels"].tolist() == [IGNORE_INDEX] * MAX_TOKENS
    # The textual sample has no image: a zero image and an empty patch mask.
    assert textual["images"].shape == (3, *IMAGE_SIZE) and not textual["images"].any()
    assert not textual["patch_mask"].any()
    reference_ids, reference_valid = _reference(tokenizer, items[4][3])
    for sample in (textual, pair):  # text: masked ids, real-token attention mask, labels at masked positions
        assert sample["attention_mask"].tolist() == reference_valid.astype(int).tolist()
        assert (sample["mlm_labels"] != IGNORE_INDEX).any()
        assert not np.array_equal(sample["input_ids"].numpy(), reference_ids), "some token is replaced"
        assert sample["texts"] == items[4][3]
    assert torch.equal(pair["images"], visual["images"]), "the visual-textual sample holds the item's image"


def test_samples_of_all_tasks_have_the_same_keys_and_shapes_so_fastreid_collates_a_mixed_batch(items, tokenizer):
    dataset = _dataset(items, tokenizer)
    samples = [dataset[encode_index(item, task, N)] for item, task in ((0, IMAGE), (1, TEXT), (2, PAIR), (3, TEXT))]
    keys = set(samples[0])
    assert {"patch_mask", "input_ids", "attention_mask", "mlm_labels"} <= keys
    for sample in samples:
        assert set(sample) == keys
        for key, value in sample.items():
            if isinstance(value, torch.Tensor):
                assert value.shape == samples[0][key].shape and value.dtype == samples[0][key].dtype, key
    batch = fast_batch_collator(samples)
    assert batch["images"].shape == (4, 3, *IMAGE_SIZE)
    assert batch["patch_mask"].dtype == torch.bool and batch["patch_mask"].shape == (4, NUM_PATCHES)
    for key in ("input_ids", "attention_mask", "mlm_labels"):
        assert batch[key].dtype == torch.int64 and batch[key].shape == (4, MAX_TOKENS)
    assert batch["modalities"].tolist() == [IMAGE, TEXT, PAIR, TEXT]
    for row, sample in enumerate(samples):
        assert torch.equal(batch["patch_mask"][row], sample["patch_mask"])
        assert torch.equal(batch["input_ids"][row], sample["input_ids"])
    assert batch["texts"] == [items[i][3] for i in range(4)]


def test_text_masking_never_touches_cls_sep_or_padding_and_labels_hold_the_original_ids(items, tokenizer):
    dataset = _dataset(items, tokenizer)
    mask_id = tokenizer.mask_token_id
    changed = 0
    for item in range(N):
        reference_ids, valid = _reference(tokenizer, items[item][3])
        special = ~valid
        special[0] = True  # [CLS]
        special[int(valid.sum()) - 1] = True  # [SEP]
        assert reference_ids[0] == tokenizer.cls_token_id and reference_ids[valid.sum() - 1] == tokenizer.sep_token_id
        for task, read_count in itertools.product((TEXT, PAIR), range(8)):
            sample = dataset[encode_index(item, task, N, read_count)]
            ids, labels = sample["input_ids"].numpy(), sample["mlm_labels"].numpy()
            chosen = labels != IGNORE_INDEX
            assert chosen.any(), "every description gets at least one masked token"
            assert not chosen[special].any(), "special and padding positions are never predicted"
            assert np.array_equal(ids[special], reference_ids[special]), "special and padding ids are kept"
            assert np.array_equal(labels[chosen], reference_ids[chosen]), "labels are the unmasked ids"
            assert np.array_equal(ids[~chosen], reference_ids[~chosen]), "only chosen positions change"
            assert set(ids[chosen][ids[chosen] != reference_ids[chosen]].tolist()) <= set(range(len(tokenizer)))
            changed += int((ids[chosen] == mask_id).sum())
    assert changed > 0


# ---------------------------------------------------------------- dynamic and reproducible


def test_masks_are_new_on_every_read_and_the_same_for_the_same_seed_index_and_read_count(items, tokenizer):
    dataset = _dataset(items, tokenizer, seed=0)
    fresh = _dataset(items, tokenizer, seed=0)
    other_seed = _dataset(items, tokenizer, seed=1)
    for item, task in itertools.product(range(N), (IMAGE, TEXT, PAIR)):
        first = dataset[encode_index(item, task, N, 0)]
        second_read = dataset[encode_index(item, task, N, 1)]
        assert not _same_masks(first, second_read), f"read 1 of {(item, task)} repeats read 0's masks"
        assert _same_masks(first, dataset[encode_index(item, task, N, 0)]), "reading again gives the same masks"
        assert _same_masks(first, fresh[encode_index(item, task, N, 0)]), "a fresh dataset gives the same masks"
        assert _same_masks(second_read, fresh[encode_index(item, task, N, 1)])
        assert not _same_masks(first, other_seed[encode_index(item, task, N, 0)]), "another seed, other masks"
        # Apart from the masks, a later read is the same sample.
        assert torch.equal(first["images"], second_read["images"]) and first["targets"] == second_read["targets"]


def _loader_masks(dataset, indices, num_workers):
    loader = DataLoader(dataset, batch_size=4, sampler=indices, num_workers=num_workers,
                        collate_fn=fast_batch_collator)
    return [(batch["modalities"], batch["img_paths"], batch["patch_mask"], batch["input_ids"], batch["mlm_labels"])
            for batch in loader]


def test_masks_are_the_same_with_0_and_2_loader_workers_over_the_task_sampler_stream(items, tokenizer):
    sampler = TaskIdentitySampler(items, 4, 2, seed=3, rank=0, world_size=1)
    indices = list(itertools.islice(iter(sampler), 4 * 12))
    assert max(index // (3 * N) for index in indices) >= 1, "the stream re-reads samples (read counts > 0)"
    dataset = _dataset(items, tokenizer, seed=5)
    in_process = _loader_masks(dataset, indices, 0)
    in_workers = _loader_masks(dataset, indices, 2)
    assert len(in_process) == len(in_workers) == 12
    for batch_0, batch_2 in zip(in_process, in_workers):
        assert torch.equal(batch_0[0], batch_2[0]) and batch_0[1] == batch_2[1]
        for tensor_0, tensor_2 in zip(batch_0[2:], batch_2[2:]):
            assert torch.equal(tensor_0, tensor_2)
    # ... and equal to reading the indices one by one (the mask is a function of the index alone).
    direct = [dataset[index] for index in indices]
    assert torch.equal(torch.cat([batch[2] for batch in in_workers]), torch.stack([s["patch_mask"] for s in direct]))
    assert torch.equal(torch.cat([batch[3] for batch in in_workers]), torch.stack([s["input_ids"] for s in direct]))
    assert any(batch[2].any() for batch in in_workers) and any((batch[4] != IGNORE_INDEX).any()
                                                               for batch in in_workers)


# ---------------------------------------------------------------- statistics over many reads


def test_masked_patch_fraction_is_the_ratio_and_every_patch_gets_masked(items, tokenizer):
    dataset = _dataset(items, tokenizer)
    masks = torch.stack([dataset[encode_index(item, IMAGE, N, read)]["patch_mask"]
                         for item in range(N) for read in range(30)])
    assert (masks.sum(dim=1) == round(IMAGE_RATIO * NUM_PATCHES)).all()
    assert masks.float().mean().item() == pytest.approx(IMAGE_RATIO)
    assert masks.any(dim=0).all(), "the mask moves: every patch is masked in some read"


def test_text_tokens_are_chosen_at_the_ratio_and_split_80_10_10_within_binomial_tolerance(items, tokenizer):
    dataset = _dataset(items, tokenizer)
    mask_id = tokenizer.mask_token_id
    expected_chosen = variance = 0.0
    chosen = to_mask = kept = randomised = 0
    for item in range(N):
        reference_ids, valid = _reference(tokenizer, items[item][3])
        candidates = int(valid.sum()) - 2  # without [CLS] and [SEP]
        for read in range(150):
            sample = dataset[encode_index(item, TEXT, N, read)]
            ids, labels = sample["input_ids"].numpy(), sample["mlm_labels"].numpy()
            selected = labels != IGNORE_INDEX
            chosen += int(selected.sum())
            to_mask += int((ids[selected] == mask_id).sum())
            kept += int((ids[selected] == reference_ids[selected]).sum())
            randomised += int(((ids[selected] != mask_id) & (ids[selected] != reference_ids[selected])).sum())
        # Each candidate is chosen with p = TEXT_RATIO; a description with none chosen gets one.
        expected_chosen += 150 * (candidates * TEXT_RATIO + (1 - TEXT_RATIO) ** candidates)
        variance += 150 * candidates * TEXT_RATIO * (1 - TEXT_RATIO)
    assert abs(chosen - expected_chosen) < 4 * math.sqrt(variance), (chosen, expected_chosen)
    assert to_mask + kept + randomised == chosen
    for count, share in ((to_mask, 0.8), (randomised, 0.1), (kept, 0.1)):
        # Binomial(chosen, share): 4 standard deviations (a random token equal to the original counts as
        # kept, 1 / vocabulary of the 10%: far inside the tolerance).
        tolerance = 4 * math.sqrt(share * (1 - share) / chosen)
        assert abs(count / chosen - share) < tolerance, (count, chosen, share)


# ---------------------------------------------------------------- errors and the patch grid


def test_text_and_visual_textual_reads_of_an_item_without_description_raise_naming_the_image(items, tokenizer):
    broken = list(items)
    broken[5] = (*items[5][:3], "")
    broken[7] = items[7][:3]  # no description field at all
    dataset = _dataset(broken, tokenizer)
    for item in (5, 7):
        for task, read_count in ((TEXT, 0), (PAIR, 0), (TEXT, 3), (PAIR, 2)):
            with pytest.raises(ValueError, match=f"{os.path.basename(items[item][0])}.*has no description"):
                dataset[encode_index(item, task, N, read_count)]
    visual = dataset[encode_index(5, IMAGE, N)]  # the image alone is fine, with empty token tensors
    assert visual["texts"] == "" and (visual["mlm_labels"] == IGNORE_INDEX).all()


@pytest.mark.parametrize("key", ["IMAGE_RATIO", "TEXT_RATIO"])
@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5])
def test_a_masking_ratio_outside_0_1_is_refused_naming_the_config_key(tokenizer, key, ratio):
    kwargs = {"image_ratio": ratio} if key == "IMAGE_RATIO" else {"text_ratio": ratio}
    with pytest.raises(ValueError, match=rf"MODEL\.MMET\.MASK\.{key}={ratio}.*\(0, 1\)"):
        _mmm(tokenizer, **kwargs)


@pytest.mark.parametrize("size, patch, stride", [((256, 128), 16, (16, 16)), ((256, 128), 16, (12, 12)),
                                                 ((64, 32), 8, 8), ((70, 40), 8, (6, 10)), ((128, 64), 16, (16, 8))])
def test_patch_grid_counts_patches_as_fastreid_patch_embed_overlap(size, patch, stride):
    embed = PatchEmbed_overlap(img_size=size, patch_size=patch, stride_size=stride, embed_dim=4)
    rows, columns = patch_grid(size, patch, stride)
    assert (rows, columns) == (embed.num_y, embed.num_x)
    with torch.no_grad():
        assert embed(torch.zeros(1, 3, *size)).shape[1] == rows * columns == embed.num_patches


def test_patch_grid_refuses_an_image_smaller_than_a_patch():
    with pytest.raises(ValueError, match="smaller than one 16-pixel patch"):
        patch_grid((8, 64), 16, 16)


def test_build_mmm_masks_the_model_grid_with_the_configured_tokenizer_ratios_and_seed(tokenizer_folder):
    cfg = load_config(os.path.join(DEMO_CONFIGS, "mmet_pretrain.yml"), [
        "MODEL.DMF.TEXT_ENCODER.NAME", tokenizer_folder, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", 24, "SEED", 7,
        "INPUT.SIZE_TRAIN", [64, 32], "MODEL.DMF.PATCH_SIZE", 8, "MODEL.BACKBONE.STRIDE_SIZE", (6, 4),
        "MODEL.MMET.MASK.IMAGE_RATIO", 0.3, "MODEL.MMET.MASK.TEXT_RATIO", 0.2, "MODEL.MMET.MASK.MIN_BLOCK", 3])
    mmm = build_mmm(cfg)
    encoder = MMETImageEncoder(img_size=(64, 32), patch_size=8, stride_size=(6, 4), embed_dim=4, depth=1, num_heads=1)
    assert mmm.grid == encoder.grid == (10, 7)
    assert (mmm.seed, mmm.max_tokens, mmm.min_block) == (7, 24, 3)
    assert (mmm.image_ratio, mmm.text_ratio) == (0.3, 0.2)
    assert mmm.vocab_size == len(AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)) < 1000
    assert int(mmm.patch_mask(mmm.generator(0, 0)).sum()) == round(0.3 * 70)
