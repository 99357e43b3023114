"""Images that would decode wrongly or hugely, and folders too small to split: one line each."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from orchestrator.cli import main
from trainables.data.images import MAX_PIXELS, DataError, read_image


def header_bomb(path, width=60000, height=60000):
    """A valid 1x1 grey PNG whose IHDR then claims width x height (CRC fixed)."""
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17]))
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_a_header_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    header_bomb(path)  # 3.6 gigapixels: PIL itself refuses to open it
    with pytest.raises(DataError, match="the header claims too many pixels"):
        read_image(path, color=False)
    header_bomb(path, 12000, 12000)  # 144 megapixels: opens lazily, our limit refuses it
    with pytest.raises(DataError, match="header says 12000 x 12000 pixels") as error, \
            pytest.warns(Image.DecompressionBombWarning):
        read_image(path, color=False)
    assert f"{MAX_PIXELS // 10**6}-megapixel limit" in str(error.value)


def test_float_tiff_in_unit_range_loads_as_it_is(tmp_path):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "ok.tif")
    pixels = read_image(tmp_path / "ok.tif", color=False)
    assert pixels.shape == (8, 8, 1) and np.array_equal(pixels[:, :, 0], values)


def test_float_tiff_outside_unit_range_is_refused_not_zeroed(tmp_path):
    Image.fromarray(np.full((8, 8), 200.0, np.float32), mode="F").save(tmp_path / "hdr.tif")
    with pytest.raises(DataError, match=r"float pixels span \[200, 200\], not \[0, 1\]"):
        read_image(tmp_path / "hdr.tif", color=False)


def test_a_two_image_training_folder_is_one_line(tmp_path, capsys):
    folder = tmp_path / "two"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(np.full((48, 48), 40 * index, np.uint8)).save(folder / f"{index}.png")
    study = tmp_path / "study.yaml"
    study.write_text(f"name: two\ndata: {{train: {folder}, test: [embedded], patch_size: 32}}\n"
                     "search_space: {name: hinas}\n")
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data.train: dataset")
    assert "at least 3 images, got 2" in err[0]
