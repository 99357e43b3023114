"""Train-W / Train-A / Validation-V: random and stratified (Superkernel NAS Sec. 5.1)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main
from orchestrator.study.reading import load_study
from trainables.data.loading import stage_data
from trainables.data.splits import group_labels, split_for_search

# 5 groups of 40, 20, 10, 3 and 2 images (75), interleaved as a folder listing would be
GROUPS = [label for label, size in zip("abcde", (40, 20, 10, 3, 2))
          for _ in range(size)]


def test_stratified_keeps_every_groups_share():
    items = list(range(len(GROUPS)))
    train_w, train_a, val = split_for_search(items, seed=0, val_fraction=0.1, groups=GROUPS)
    shares = Counter(GROUPS[i] for i in val)
    assert shares == {"a": 4, "b": 2, "c": 1, "d": 1, "e": 1}  # >= 1 from a group of >= 2
    assert sorted(train_w + train_a + val) == items
    assert not set(train_w) & set(train_a) and not set(val) & set(train_w + train_a)
    assert abs(len(train_w) - len(train_a)) <= 1 and len(train_w) >= len(train_a)


def test_stratified_is_deterministic_and_seeded():
    items = [f"img{i}" for i in range(len(GROUPS))]
    parts = split_for_search(items, seed=5, val_fraction=0.1, groups=GROUPS)
    assert parts == split_for_search(items, seed=5, val_fraction=0.1, groups=GROUPS)
    assert parts != split_for_search(items, seed=6, val_fraction=0.1, groups=GROUPS)
    assert all(part == sorted(part, key=items.index) for part in parts)  # input order


def test_stratified_edge_cases():
    lone = ["x", "y", "y", "z", "z", "z"]  # a group of one image only trains
    _, _, val = split_for_search(list(range(6)), seed=0, val_fraction=0.5, groups=lone)
    assert sorted(lone[i] for i in val) == ["y", "z", "z"]  # 1 of 2, 1.5 of 3 rounds up
    assert split_for_search(list(range(4)), seed=0, val_fraction=0, groups=list("aabb"))[2] == []
    with pytest.raises(ValueError, match="fewer than 2 to train"):
        split_for_search(list(range(3)), seed=0, val_fraction=0.5, groups=list("aaa"))


def test_group_labels_from_names():
    assert group_labels(["0001_010_0_0", "0042_001_1_2"], r"^(\d{4})_") == ["0001", "0042"]
    with pytest.raises(ValueError, match=r"2 of 3 image names do not match .*: img1, img2"):
        group_labels(["0001_010", "img1", "img2"], r"^(\d{4})_")


STUDY = """
name: strat
data: {{train: {train}, test: [embedded], patch_size: 16, val_fraction: 0.25{extra}}}
search_space: {{name: hinas, options: {{num_layers: 2, num_nodes: 2, width: 4}}}}
"""


def scene_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for index, name in enumerate(names):
        pixels = np.random.default_rng(index).integers(0, 255, (20, 20), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def study_file(tmp_path: Path, extra: str, names: list[str]) -> Path:
    folder = scene_folder(tmp_path, names)
    path = tmp_path / "strat.yaml"
    path.write_text(STUDY.format(train=folder, extra=extra))
    return path


def test_study_splits_by_the_pattern(tmp_path):
    names = [f"{scene:04d}_{frame:03d}" for scene in (1, 2) for frame in range(4)]
    extra = ", split: stratified, group_pattern: '^(\\d{4})_'"
    data = stage_data(load_study(str(study_file(tmp_path, extra, names))))
    assert sorted(image.name[:4] for image in data.search.val) == ["0001", "0002"]


@pytest.mark.parametrize(("extra", "message"), [
    (", split: stratified", "data.group_pattern: data.split: stratified needs a regex"),
    (", group_pattern: '^(a)'", "data.group_pattern: only read with data.split: stratified"),
    (", split: stratified, group_pattern: '^a'", "data.group_pattern: no group"),
    (", split: stratified, group_pattern: '(a'", "data.group_pattern: not a regex"),
    (", split: stratified, group_pattern: '^(\\d{4})_'",
     "data.group_pattern: data.train '{folder}': 1 of 4 image names do not match "
     "'^(\\d{4})_': img"),
])
def test_bad_split_settings_are_one_line(tmp_path, capsys, extra, message):
    path = study_file(tmp_path, extra, ["0001_000", "0001_001", "0002_000", "img"])
    assert main(["validate", str(path)]) != 0
    error = capsys.readouterr().err.strip()
    assert message.replace("{folder}", str(tmp_path / "scenes")) in error and "\n" not in error
