"""Shared fixtures: small models and the locally shipped text encoder."""

import pytest

import fastreid_dmf  # noqa: F401  (patches fastreid, registers components)
from tests.shared import MINILM


@pytest.fixture(scope="session")
def text_encoder():
    """One frozen MiniLM encoder for the whole session (loading takes ~1 s)."""
    from fastreid_dmf.modeling.text import TextTokenEncoder

    return TextTokenEncoder(MINILM, max_tokens=32, freeze=True)


@pytest.fixture(scope="session")
def tiny_benchmark_root(tmp_path_factory):
    """A dataset root holding the bundled benchmark's ``tiny`` preset (FineGPR, SynthMarket, SynthMSMT)."""
    from fastreid_dmf.tooling.synthetic import generate_benchmark

    root = tmp_path_factory.mktemp("tiny_benchmark")
    generate_benchmark(str(root), preset="tiny", seed=0)
    return root


@pytest.fixture(scope="module")
def tiny_datasets(tiny_benchmark_root):
    """fast-reid's dataset root pointed at :func:`tiny_benchmark_root` for one test module (then restored).

    fast-reid reads ``$FASTREID_DATASETS`` once, at import (``fastreid.data.build._root``).
    """
    from fastreid_dmf.data.build import datasets_root_set

    with datasets_root_set(str(tiny_benchmark_root)):
        yield tiny_benchmark_root


@pytest.fixture(scope="session")
def inference_run(tmp_path_factory):
    """``inference_run(arch, seed=0) -> (config_path, checkpoint_path)``: a tiny random DMF / MMET run folder.

    Made once per (arch, seed) and session (:func:`tests.shared.make_inference_checkpoint`); treat as read-only.
    """
    from tests.shared import make_inference_checkpoint

    made: dict[tuple[str, int], tuple[str, str]] = {}

    def get(arch: str = "DMF", seed: int = 0) -> tuple[str, str]:
        if (arch, seed) not in made:
            made[arch, seed] = make_inference_checkpoint(tmp_path_factory.mktemp(f"{arch}_{seed}"), arch, seed)
        return made[arch, seed]

    return get
