"""Tests for the VTestReID dataset (fastreid_dmf.data.datasets.vtest) on the real test set bundled with the package."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# fastreid_dmf applies the compat shim that fastreid.data needs on torch 2, so fastreid is imported
# inside the tests, after it.
import fastreid_dmf
from fastreid_dmf.data.datasets.vtest import VTEST_ROOT_ENV, VTestReID, default_vtest_root, resolve_vtest_root

BUNDLED = default_vtest_root()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VTEST_ROOT_ENV, raising=False)


def _copy_subset(dst: Path, per_dir: int = 3) -> Path:
    """Copy a few images of each shared sub-folder (including a junk one) into ``dst``."""
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        names = sorted(os.listdir(BUNDLED / sub))
        keep = names[:per_dir] + [n for n in names if n.startswith("0007_")][:per_dir]
        (dst / sub).mkdir(parents=True)
        for name in dict.fromkeys(keep):
            shutil.copy(BUNDLED / sub / name, dst / sub / name)
    return dst


def test_registered_and_subclasses_market1501() -> None:
    from fastreid.data.datasets import DATASET_REGISTRY
    from fastreid.data.datasets.market1501 import Market1501

    assert DATASET_REGISTRY.get("VTestReID") is VTestReID
    assert issubclass(VTestReID, Market1501)
    assert VTestReID.dataset_name == "vtestreid"


def test_default_root_is_the_copy_inside_the_package() -> None:
    package_dir = Path(fastreid_dmf.__file__).resolve().parent
    assert default_vtest_root() == package_dir / "data" / "bundled" / "vtest_reid"
    assert (default_vtest_root() / "README.txt").is_file()


def test_loads_from_the_project_without_shared_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A clone with no ../shared: copy the package alone elsewhere and import the copy in a fresh interpreter.
    import subprocess
    import sys

    package_dir = Path(fastreid_dmf.__file__).resolve().parent
    clone = tmp_path / "clone"
    shutil.copytree(package_dir, clone / "fastreid_dmf", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import fastreid_dmf\n"
            "from fastreid_dmf.data.datasets.vtest import VTestReID\n"
            "d = VTestReID(root='nowhere')\n"
            "print(d.vtest_root, len(d.train), len(d.query), len(d.gallery))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(clone)}).stdout.split()
    assert out[0].startswith(str(clone / "fastreid_dmf"))
    assert out[1:] == ["113", "12", "180"]


def test_reads_shared_set_with_documented_counts() -> None:
    data = VTestReID()
    assert data.vtest_root == str(BUNDLED)
    train_pids = {item[1] for item in data.train}
    assert len(data.train) == 113
    assert train_pids == {f"vtestreid_{pid}" for pid in (1, 2, 3, 4)}
    assert all(isinstance(item[2], str) and item[2].startswith("vtestreid_") for item in data.train)
    assert len(data.query) == 12
    assert {item[1] for item in data.query} == set(range(5, 11))
    assert len(data.gallery) == 180  # 186 files, 6 junk (pid -1) skipped
    assert len(os.listdir(BUNDLED / "bounding_box_test")) == 186
    assert {item[1] for item in data.gallery} == set(range(5, 11))
    assert all(item[1] != -1 for item in data.gallery)
    assert {item[2] for item in data.query} == {0}  # queries are all c1 -> camid 0
    assert {item[2] for item in data.gallery} == {0, 1}
    all_ids = train_pids | {item[1] for item in data.query + data.gallery}
    assert len(all_ids) == 10
    for img_path, pid, camid in data.query:
        name = os.path.basename(img_path)
        assert int(name[:4]) == pid and int(name[6]) - 1 == camid
    paths = [item[0] for item in data.gallery]
    assert paths == sorted(paths)
    data.show_train()
    data.show_test()


def test_vtest_root_argument(tmp_path: Path) -> None:
    copy = _copy_subset(tmp_path / "copy")
    data = VTestReID(root="unused", vtest_root=str(copy))
    assert data.vtest_root == str(copy)
    assert all(item[0].startswith(str(copy)) for item in data.train + data.query + data.gallery)
    assert len(data.train) == 3
    assert len(data.query) == 5  # 3 first names + 2 queries of 0007 (one overlaps)
    assert len(data.gallery) == 3  # the 3 junk images are skipped, the 3 of 0007 kept
    assert {item[1] for item in data.gallery} == {7}


def test_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_subset(tmp_path / "envcopy", per_dir=2)
    monkeypatch.setenv(VTEST_ROOT_ENV, str(copy))
    data = VTestReID()
    assert data.vtest_root == str(copy)
    assert len(data.train) == 2
    # the explicit argument wins over the environment variable
    assert VTestReID(vtest_root=str(BUNDLED)).vtest_root == str(BUNDLED)


def test_root_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fastreid_dmf.data.datasets.vtest as vtest_module

    monkeypatch.setattr(vtest_module, "default_vtest_root", lambda: tmp_path / "absent")
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / "datasets" / "vtest_reid" / sub).mkdir(parents=True)
    assert resolve_vtest_root(str(tmp_path / "datasets")) == str(tmp_path / "datasets" / "vtest_reid")


def test_missing_folder_argument(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError) as info:
        VTestReID(vtest_root=str(missing))
    message = str(info.value)
    assert str(missing) in message and "bounding_box_train" in message and "Market-1501" in message


def test_missing_folder_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "env_dir"
    monkeypatch.setenv(VTEST_ROOT_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match=VTEST_ROOT_ENV) as info:
        VTestReID()
    assert str(missing) in str(info.value)


def test_missing_folder_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fastreid_dmf.data.datasets.vtest as vtest_module

    monkeypatch.setattr(vtest_module, "default_vtest_root", lambda: tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as info:
        VTestReID(root=str(tmp_path / "datasets"))
    message = str(info.value)
    assert str(tmp_path / "absent") in message and str(tmp_path / "datasets" / "vtest_reid") in message


def test_missing_subfolder(tmp_path: Path) -> None:
    (tmp_path / "v" / "bounding_box_train").mkdir(parents=True)
    (tmp_path / "v" / "query").mkdir()
    with pytest.raises(FileNotFoundError, match="bounding_box_test"):
        VTestReID(vtest_root=str(tmp_path / "v"))
