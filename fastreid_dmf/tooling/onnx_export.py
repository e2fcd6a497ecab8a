"""ONNX export of a DMF / MMET model's image feature, checked against PyTorch with onnxruntime.

``tools/export_onnx.py`` is the command line; this module is its logic.

The exported graph is :class:`~fastreid_dmf.engine.inference.ImageFeatureModel` (optionally flip-averaged,
:class:`~fastreid_dmf.tooling.features.FlipAveragedFeatureModel`):

* input ``"images"``: float32 ``(batch, 3, H, W)``, RGB in 0..255, ``H x W = INPUT.SIZE_TEST`` (the model
  normalises inside), ``batch`` a dynamic axis;
* output ``"features"``: float32 ``(batch, D)``, the test feature ``ReidEvaluator`` scores
  (``MODEL.DMF.TEST_FEAT``, image branch). With ``TEST.FLIP.ENABLED`` the evaluator averages the features of
  each image and its horizontal flip; pass ``flip_test=True`` (``--flip-test``) to build that into the graph,
  otherwise the caller must do it. The report records both.

Exporter. ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript), with
``dynamic_shapes={"images": {0: Dim("batch")}}``, at opset :data:`ONNX_OPSET` by default. Both torch 2.14
exporters were tried on the tiny DMF and MMET models (timm ``Block``s whose attention calls
``F.scaled_dot_product_attention``); both gave files onnxruntime 1.31 loads and runs at batch 1, 3 and 5
within 1e-6 of PyTorch. The dynamo one is used because:

* ``torch.export`` traces the batch size as a symbol and fails the export if the model specialises it, so a
  dynamic batch axis is proven at export time; the TorchScript exporter's ``dynamic_axes`` only renames the
  axis of a trace taken at one batch size (the check below would be the only guard);
* the TorchScript exporter (``dynamo=False``) is deprecated since torch 2.9 (``DeprecationWarning``), stops at
  opset 20, and traces fast-reid ViT's shape ``assert`` with a ``TracerWarning``;
* its graph is plainer: SDPA becomes ``MatMul``/``Softmax`` (opset 23: one ``Attention`` op) instead of the
  TorchScript decomposition's ``Sqrt``/``Where``/``ConstantOfShape`` chain.

It is slower (about 6 s against 2 s for the tiny models), which does not matter for an export.

Opset. :data:`ONNX_OPSET` = 18, the lowest opset the dynamo exporter implements natively (asking for 17
or lower makes torch convert the graph down with onnx's version converter, which can fail), and the one
the widest range of runtimes loads (onnxruntime >= 1.14; ``LayerNormalization`` is one op from opset 17).
torch 2.14's own default is 20 (native ``Gelu``); 23 maps attention to ONNX's ``Attention`` op. All three
passed the check; ``--opset`` chooses, and the report records the opset read back from the file.

Check. Before the file is put in place, onnxruntime (``CPUExecutionProvider``) runs it on the same images
as PyTorch at every batch size in ``batch_sizes`` (at least two different ones, which exercises the dynamic
axis): real test images of a registered dataset (read as the evaluator reads them, see
:mod:`.features`) or seeded random images in 0..255. The largest absolute difference above ``atol`` stops
the export with a ``ValueError`` and nothing is written. Export and check run on the CPU.

Outputs: ``<output>.onnx`` (one file, weights inside: protobuf's 2 GB limit holds for ViT-B/L) and the
report ``<output stem>.json`` (:func:`export_onnx`'s return value).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ONNX_OPSET", "DEFAULT_ATOL", "DEFAULT_BATCH_SIZES", "INPUT_NAME", "OUTPUT_NAME", "report_path",
           "export_to_onnx_bytes", "onnx_signature", "check_images", "compare_with_onnxruntime", "export_onnx"]

logger = logging.getLogger(__name__)

#: Default ONNX opset (module docstring: why 18).
ONNX_OPSET = 18
#: Default largest allowed ``|onnxruntime - PyTorch|`` over all feature values.
DEFAULT_ATOL = 1e-4
#: Default batch sizes of the onnxruntime check.
DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 4)
#: Graph input / output names.
INPUT_NAME, OUTPUT_NAME = "images", "features"


def report_path(output: str) -> str:
    """The JSON report written beside ``output``: ``<output without extension>.json``."""
    return os.path.splitext(output)[0] + ".json"


def export_to_onnx_bytes(net: nn.Module, example: torch.Tensor, opset: int = ONNX_OPSET) -> bytes:
    """Serialised ONNX model of ``net`` with a dynamic batch axis.

    Args:
        net: float32 ``(B, 3, H, W)`` -> ``(B, D)``, eval mode, on the CPU.
        example: float32 ``(B, 3, H, W)`` with ``B >= 2`` (``torch.export`` specialises a batch of 1).
        opset: ONNX opset (``opset_version``).

    Returns:
        The ``ModelProto`` bytes; input :data:`INPUT_NAME` ``(batch, 3, H, W)``, output :data:`OUTPUT_NAME`
        ``(batch, D)``. Source: ``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim``.

    Raises:
        ValueError: ``example`` has a batch of 1 or is not 4-D.
        Exception: torch's own export errors (an unsupported operator) pass through with their traceback.
    """
    if example.ndim != 4 or example.shape[0] < 2:
        raise ValueError(f"example images must be (B>=2, 3, H, W), got {tuple(example.shape)}")
    program = torch.onnx.export(net, (example,), None, dynamo=True, input_names=[INPUT_NAME],
                                output_names=[OUTPUT_NAME], opset_version=opset, verbose=False,
                                dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}})
    return program.model_proto.SerializeToString()


def onnx_signature(path: str) -> dict:
    """Opset and graph inputs / outputs of an ONNX file.

    Returns:
        ``{"opset": int (default domain), "inputs": [{"name", "shape", "dtype"}], "outputs": [...]}``; a shape
        lists ints and, for symbolic axes, their names (``"batch"``). Source: ``onnx.load``.
    """
    import onnx

    model = onnx.load(path, load_external_data=False)

    def values(infos) -> list[dict]:
        out = []
        for info in infos:
            tensor = info.type.tensor_type
            shape = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
            out.append({"name": info.name, "shape": shape,
                        "dtype": str(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))})
        return out

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "inputs": values(model.graph.input), "outputs": values(model.graph.output)}


def check_images(cfg, count: int, dataset: str = "", seed: int = 0) -> tuple[torch.Tensor, str]:
    """``count`` images for the check, as the model's test input.

    Args:
        cfg: the run's config (``INPUT.SIZE_TEST``, the test transform, dataset arguments).
        count: number of images.
        dataset: a registered dataset name: ``count`` of its query + gallery images, evenly spread (repeated
            when it has fewer), read and transformed as the evaluator does; "" = random images.
        seed: seed of the random images (``torch.Generator``).

    Returns:
        ``(images float32 (count, 3, H, W) in 0..255, description)``. Source: fast-reid's
        ``build_transforms(cfg, is_train=False)``, :func:`~fastreid_dmf.tooling.features.dataset_images`.

    Raises:
        ValueError: unknown or unreadable dataset, unreadable image (names it).
    """
    height, width = (int(s) for s in cfg.INPUT.SIZE_TEST)
    if not dataset:
        generator = torch.Generator().manual_seed(seed)
        return (torch.rand(count, 3, height, width, generator=generator) * 255,
                f"{count} random images in 0..255 (seed {seed})")
    from fastreid.data.transforms import build_transforms

    from .features import dataset_images, read_image_rgb

    paths = dataset_images(cfg, dataset)["paths"]
    picks = np.linspace(0, len(paths) - 1, num=count).round().astype(int) if len(paths) >= count else \
        np.arange(count) % len(paths)
    transform = build_transforms(cfg, is_train=False)
    images = torch.stack([transform(read_image_rgb(paths[i])) for i in picks]).float()
    return images, f"{count} test images of {dataset} (query + gallery, evenly spread, of {len(paths)})"


def compare_with_onnxruntime(path: str, net: nn.Module, images: torch.Tensor,
                             batch_sizes: Sequence[int]) -> dict[int, float]:
    """Largest ``|onnxruntime - PyTorch|`` of the features of ``images[:b]`` for each ``b`` in ``batch_sizes``.

    Args:
        path: ONNX file.
        net: the exported module (float32 ``(B, 3, H, W)`` -> ``(B, D)``, eval mode, CPU).
        images: float32 ``(N, 3, H, W)``, ``N >= max(batch_sizes)``.
        batch_sizes: batch sizes to run.

    Returns:
        ``{batch_size: max abs difference}``. Source: ``onnxruntime.InferenceSession`` (CPUExecutionProvider).

    Raises:
        ValueError: the outputs' shapes differ (the dynamic axis does not work).
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    diffs = {}
    for size in batch_sizes:
        batch = images[:size].contiguous()
        with torch.no_grad():
            expected = net(batch).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]
        if got.shape != expected.shape:
            raise ValueError(f"onnxruntime gave features of shape {got.shape} for a batch of {size}, PyTorch "
                             f"{expected.shape}")
        diffs[size] = float(np.abs(got.astype(np.float64) - expected).max())
    return diffs


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    try:
        import onnxscript

        onnxscript_version = onnxscript.__version__
    except ImportError:  # pragma: no cover - torch's dynamo exporter needs it
        onnxscript_version = ""
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxscript": onnxscript_version}


def export_onnx(checkpoint: str, output: str, config_file: str = "", opts: Sequence[str] = (), dataset: str = "",
                batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, atol: float = DEFAULT_ATOL,
                opset: int = ONNX_OPSET, flip_test: bool = False, overwrite: bool = False) -> dict:
    """Export, check and write (module docstring): the body of ``tools/export_onnx.py``.

    Args:
        checkpoint: DMF / MMET checkpoint (``model_final.pth``).
        output: the ONNX file to write (``.onnx``).
        config_file: the run's config; "" = ``config.yaml`` beside the checkpoint.
        opts: ``KEY VALUE`` config overrides.
        dataset: registered dataset whose test images the check uses; "" = random images.
        batch_sizes: at least two different positive batch sizes for the check.
        atol: largest allowed ``|onnxruntime - PyTorch|``.
        opset: ONNX opset.
        flip_test: build ``TEST.FLIP``'s flip averaging into the graph.
        overwrite: replace an existing ONNX file / report.

    Returns:
        The report also written to :func:`report_path`: ``{"onnx", "opset", "exporter", "inputs", "outputs",
        "max_abs_diff", "max_abs_diff_per_batch_size", "batch_sizes", "atol", "check_images", "provider",
        "flip_test_in_graph", "config_test_flip", "meta_architecture", "test_feat", "size_test",
        "feature_dim", "checkpoint", "config_file", "versions"}``.
        Source: ``torch.onnx.export``, ``onnxruntime.InferenceSession``.

    Raises:
        FileExistsError: the ONNX file or report exists and not ``overwrite`` (names it).
        FileNotFoundError: missing checkpoint or config (names it).
        ValueError: fewer than two different batch sizes, a bad ``atol``, a bad dataset or image, or the
            check failed (gives the difference, the batch size and ``atol``; nothing written).
    """
    from ..engine.inference import default_config_file, load_inference_model
    from ..fileio import atomic_write
    from .features import check_outputs_free, feature_model

    sizes = sorted({int(b) for b in batch_sizes})
    if len(sizes) < 2 or sizes[0] < 1:
        raise ValueError(f"--batch-sizes {list(batch_sizes)}: need at least two different positive batch sizes "
                         "(they check the dynamic batch axis)")
    if not atol >= 0:
        raise ValueError(f"--atol {atol}: expected a non-negative tolerance")
    report_file = report_path(output)
    if os.path.abspath(report_file) == os.path.abspath(output):
        raise ValueError(f"output {output!r} would be overwritten by its own .json report; use a .onnx name")
    check_outputs_free([output, report_file], overwrite)
    cfg, model = load_inference_model(checkpoint, config_file, opts, device="cpu")
    config_file = config_file or default_config_file(checkpoint)
    net = feature_model(model, flip_test)
    images, described = check_images(cfg, max(sizes), dataset)
    logger.info("Exporting %s's image feature to ONNX (opset %d, dynamo exporter)", cfg.MODEL.META_ARCHITECTURE, opset)
    data = export_to_onnx_bytes(net, images[:2], opset)  # max(sizes) >= 2 images
    checked: dict = {}

    def verify(tmp: str) -> None:
        checked["diffs"] = diffs = compare_with_onnxruntime(tmp, net, images, sizes)
        checked["signature"] = onnx_signature(tmp)
        worst = max(diffs, key=diffs.get)
        logger.info("onnxruntime vs PyTorch on %s: max abs difference %s", described,
                    ", ".join(f"{diffs[b]:.3g} (batch {b})" for b in sizes))
        if not diffs[worst] <= atol:
            raise ValueError(f"ONNX check failed: max |onnxruntime - PyTorch| = {diffs[worst]:.3g} at batch size "
                             f"{worst} on {described}, above --atol {atol:g} (opset {opset}); nothing written")

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_write(output, lambda handle: handle.write(data), verify=verify)
    diffs, signature = checked["diffs"], checked["signature"]
    report = {"onnx": os.path.abspath(output), "opset": signature["opset"],
              "exporter": "torch.onnx.export(dynamo=True)", "inputs": signature["inputs"],
              "outputs": signature["outputs"], "max_abs_diff": max(diffs.values()),
              "max_abs_diff_per_batch_size": {str(b): d for b, d in diffs.items()}, "batch_sizes": sizes,
              "atol": atol, "check_images": described, "provider": "CPUExecutionProvider",
              "flip_test_in_graph": bool(flip_test), "config_test_flip": bool(cfg.TEST.FLIP.ENABLED),
              "meta_architecture": cfg.MODEL.META_ARCHITECTURE, "test_feat": cfg.MODEL.DMF.TEST_FEAT,
              "size_test": [int(s) for s in cfg.INPUT.SIZE_TEST], "feature_dim": signature["outputs"][0]["shape"][-1],
              "checkpoint": os.path.abspath(checkpoint) if checkpoint else "",
              "config_file": os.path.abspath(config_file), "versions": _versions()}
    text = (json.dumps(report, indent=1) + "\n").encode()
    atomic_write(report_file, lambda handle: handle.write(text))
    if report["config_test_flip"] and not flip_test:
        logger.warning("the config has TEST.FLIP.ENABLED True: the evaluator averages each image's feature with its "
                       "horizontal flip's; the ONNX graph does not (re-export with --flip-test to include it)")
    return report
