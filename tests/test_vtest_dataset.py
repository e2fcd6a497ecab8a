"""Tests for the VTestReID dataset (fastreid_dmf.data.datasets.vtest) on the shared real test set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# fastreid_dmf applies the compat shim that fastreid.data needs on torch 2, so fastreid is imported
# inside the tests, after it.
import fastreid_dmf
from fastreid_dmf.data.datasets.vtest import VTEST_ROOT_ENV, VTestReID, default_vtest_root, resolve_vtest_root

SHARED = default_vtest_root()
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared test set not found at {SHARED}")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VTEST_ROOT_ENV, raising=False)


def _copy_subset(dst: Path, per_dir: int = 3) -> Path:
    """Copy a few images of each shared sub-folder (including a junk one) into ``dst``."""
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        names = sorted(os.listdir(SHARED / sub))
        keep = names[:per_dir] + [n for n in names if n.startswith("0007_")][:per_dir]
        (dst / sub).mkdir(parents=True)
        for name in dict.fromkeys(keep):
            shutil.copy(SHARED / sub / name, dst / sub / name)
    return dst


def test_registered_and_subclasses_market1501() -> None:
    from fastreid.data.datasets import DATASET_REGISTRY
    from fastreid.data.datasets.market1501 import Market1501

    assert DATASET_REGISTRY.get("VTestReID") is VTestReID
    assert issubclass(VTestReID, Market1501)
    assert VTestReID.dataset_name == "vtestreid"


def test_default_root_is_beside_checkout() -> None:
    package_dir = Path(fastreid_dmf.__file__).resolve().parent
    assert default_vtest_root() == package_dir.parent.parent / "shared" / "data" / "vtest_reid"


@needs_shared
def test_reads_shared_set_with_documented_counts() -> None:
    data = VTestReID()
    assert data.vtest_root == str(SHARED)
    train_pids = {item[1] for item in data.train}
    assert len(data.train) == 113
    assert train_pids == {f"vtestreid_{pid}" for pid in (1, 2, 3, 4)}
    assert all(isinstance(item[2], str) and item[2].startswith("vtestreid_") for item in data.train)
    assert len(data.query) == 12
    assert {item[1] for item in data.query} == set(range(5, 11))
    assert len(data.gallery) == 180  # 186 files, 6 junk (pid -1) skipped
    assert len(os.listdir(SHARED / "bounding_box_test")) == 186
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


@needs_shared
def test_vtest_root_argument(tmp_path: Path) -> None:
    copy = _copy_subset(tmp_path / "copy")
    data = VTestReID(root="unused", vtest_root=str(copy))
    assert data.vtest_root == str(copy)
    assert all(item[0].startswith(str(copy)) for item in data.train + data.query + data.gallery)
    assert len(data.train) == 3
    assert len(data.query) == 5  # 3 first names + 2 queries of 0007 (one overlaps)
    assert len(data.gallery) == 3  # the 3 junk images are skipped, the 3 of 0007 kept
    assert {item[1] for item in data.gallery} == {7}


@needs_shared
def test_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_subset(tmp_path / "envcopy", per_dir=2)
    monkeypatch.setenv(VTEST_ROOT_ENV, str(copy))
    data = VTestReID()
    assert data.vtest_root == str(copy)
    assert len(data.train) == 2
    # the explicit argument wins over the environment variable
    assert VTestReID(vtest_root=str(SHARED)).vtest_root == str(SHARED)


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
