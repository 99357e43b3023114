"""Bad input stops the CLI with one line naming the key or file, before anything is logged."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main

STUDY = """
name: bad
data: {{train: {train}, test: [{test}], root: {root}, patch_size: 32}}
search_space: {{name: hinas, options: {{num_layers: 2, num_nodes: 2, width: 4}}}}
"""


def image_folder(root: Path, name: str, sizes=((40, 40),) * 4) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for index, size in enumerate(sizes):
        pixels = np.random.default_rng(index).integers(0, 255, size, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    return folder


def run_cli(tmp_path: Path, capsys, train="mytrain", test="mytest", extra=()) -> tuple[int, str]:
    """Dataset names given as folders under tmp_path/data unless they are known names."""
    data = tmp_path / "data"
    folder = {name: str(data / name) if name.startswith("my") else name for name in (train, test)}
    study = tmp_path / "bad.yaml"
    study.write_text(STUDY.format(train=folder[train], test=folder[test], root=data))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), *extra])
    error = capsys.readouterr().err.strip()
    assert not (tmp_path / "mlflow.db").exists(), "nothing may be logged for bad input"
    return code, error


def test_missing_dataset_folder_says_where_to_put_images(tmp_path, capsys):
    image_folder(tmp_path / "data", "mytest")
    code, error = run_cli(tmp_path, capsys, train="set12")
    assert code == 2 and len(error.splitlines()) == 1
    assert "set12" in error and str(Path("data") / "set12") in error


def test_non_image_file_is_named(tmp_path, capsys):
    folder = image_folder(tmp_path / "data", "mytrain")
    image_folder(tmp_path / "data", "mytest")
    (folder / "notes.txt").write_text("not an image")
    code, error = run_cli(tmp_path, capsys)
    assert code == 2 and len(error.splitlines()) == 1 and "notes.txt" in error


def test_image_smaller_than_patch_is_named(tmp_path, capsys):
    image_folder(tmp_path / "data", "mytrain", sizes=((40, 40), (40, 40), (20, 50), (40, 40)))
    image_folder(tmp_path / "data", "mytest")
    code, error = run_cli(tmp_path, capsys)
    assert code == 2 and len(error.splitlines()) == 1
    assert "img2" in error and "32" in error


def test_paired_folder_with_an_unmatched_name_is_named(tmp_path, capsys):
    image_folder(tmp_path / "data" / "mytrain", "noisy")
    image_folder(tmp_path / "data" / "mytrain", "clean", sizes=((40, 40),) * 3)
    image_folder(tmp_path / "data", "mytest")
    code, error = run_cli(tmp_path, capsys)
    assert code == 2 and len(error.splitlines()) == 1 and "noisy/img3.png" in error


def test_unknown_dataset_name(tmp_path, capsys):
    code, error = run_cli(tmp_path, capsys, train="imagenet")
    assert code == 2 and "imagenet" in error and "train400" in error
    assert error.startswith("error: data.train: ")
    image_folder(tmp_path / "data", "mytrain")
    code, error = run_cli(tmp_path, capsys, test="imagenet")
    assert code == 2 and error.startswith("error: data.test: ") and "imagenet" in error


def test_malformed_study_names_key(tmp_path, capsys):
    study = tmp_path / "bad.yaml"
    study.write_text("name: bad\nsearch_space: {name: hinas}\nsearch: {epochs: 0}\n")
    assert main(["validate", str(study)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "search.epochs" in error and str(study) in error


@pytest.mark.parametrize("extra", [["--dry-run"]])
def test_dry_run_checks_data_and_prints_plan(tmp_path, capsys, extra):
    image_folder(tmp_path / "data", "mytrain")
    image_folder(tmp_path / "data", "mytest")
    code, _ = run_cli(tmp_path, capsys, extra=extra)
    assert code == 0


def test_default_data_root_falls_back_to_shared(tmp_path, monkeypatch):
    from trainables.data.loading import data_root

    monkeypatch.chdir(tmp_path)
    assert data_root("set12", None) == Path("./data")  # nothing anywhere: errors name ./data
    image_folder(tmp_path / "shared" / "datasets", "set12")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert data_root("set12", None) == Path("../shared/datasets")
    image_folder(tmp_path / "work" / "data", "set12")
    assert data_root("set12", None) == Path("./data")
    assert data_root("set12", "/elsewhere") == Path("/elsewhere")


def test_resources_the_cluster_lacks_are_named(tmp_path):
    from orchestrator.run.preparing import ResourceError
    from orchestrator.run.runner import check_resources
    from orchestrator.study.reading import validate

    study = validate({"name": "gpu", "search_space": {"name": "hinas"},
                      "resources": {"retrain": {"cpu": 1, "gpu": 0.5}}})
    arms = {"default": study}
    check_resources(arms, {"CPU": 2.0, "GPU": 1.0})
    with pytest.raises(ResourceError, match=r"resources\.retrain\.gpu: 0\.5 .* has 0"):
        check_resources(arms, {"CPU": 2.0})
