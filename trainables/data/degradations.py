"""Degradations that make network inputs from clean images.

- AWGN: `noisy = clean + N(0, (sigma / 255)^2)`, unclipped and unquantised.
  sigma is fixed, drawn per sample from a list (HiNAS search: {30, 50, 70}), or
  drawn uniformly per sample from a blind range [lo, hi].
- JPEG artefacts (MoD-NAS section 4.6): the clean image, rounded to 8 bits,
  compressed by Pillow at quality q (Pillow defaults otherwise, so colour uses
  4:2:0 chroma subsampling), decoded back to float in [0, 1].

Test inputs are deterministic, so every run, node and method sees the
same noisy image for (image, "sigma25") or (image, "q10"). AWGN test noise is
drawn exactly as the DnCNN / FFDNet / KAIR test scripts draw it: numpy's legacy
generator seeded 0 for each image, `normal(0, sigma / 255, shape)`, added to the
float32 image. With it the published DnCNN weights reproduce their published
Set12 / BSD68 scores (30.43 / 29.23 dB; the paper: 30.44 / 29.23), which a
per-image seed from the file name cannot (one draw moves the Set12 mean by about
+-0.03 dB: 30.40 with sha256(name|key) seeds). The noise therefore depends on
the image's shape and sigma, not its name.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

KINDS = ("awgn", "jpeg")
_SPEC_KEYS = {"awgn": ("sigma", "sigma_range"), "jpeg": ("quality",)}
_TEST_KEY_PATTERN = re.compile(r"(sigma|q)(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Degradation:
    """How training inputs are degraded; built from a study's `degradation` dict."""

    kind: str  # "awgn" or "jpeg"
    levels: tuple[float, ...]  # sigmas (on the 0-255 scale) or JPEG qualities; blind: (lo, hi)
    blind: bool = False  # AWGN sigma drawn uniformly from [levels[0], levels[1]]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"degradation type must be one of {KINDS}, got {self.kind!r}")
        if not self.levels:
            raise ValueError("degradation needs at least one level")
        if self.kind == "awgn":
            _check_sigmas(self.levels, self.blind)
        else:
            _check_qualities(self.levels, self.blind)

    @classmethod
    def from_spec(cls, spec: dict) -> Degradation:
        """Build from {"type": "awgn", "sigma": 25 | [30, 50, 70]}, {"type": "awgn",
        "sigma_range": [0, 55]} or {"type": "jpeg", "quality": 10 | [10, 20, 30, 40]}."""
        kind = spec.get("type")
        if kind not in KINDS:
            raise ValueError(f"degradation key 'type' must be one of {KINDS}, got {kind!r}")
        allowed = _SPEC_KEYS[kind]
        for key in spec:
            if key != "type" and key not in allowed:
                raise ValueError(f"degradation key {key!r} is not allowed for {kind!r} ({allowed})")
        given = [key for key in allowed if key in spec]
        if len(given) != 1:
            raise ValueError(f"degradation {kind!r} needs exactly one of the keys {allowed}")
        return cls(kind, _as_levels(given[0], spec[given[0]]), blind=given[0] == "sigma_range")

    def to_spec(self) -> dict:
        """The inverse of `from_spec` (lists even for a single level)."""
        key = {"awgn": "sigma_range" if self.blind else "sigma", "jpeg": "quality"}[self.kind]
        return {"type": self.kind, key: list(self.levels)}

    def draw_level(self, rng: np.random.Generator) -> float:
        """The level of one training sample: fixed, one of the list, or uniform in the range."""
        if self.blind:
            return float(rng.uniform(self.levels[0], self.levels[1]))
        return float(self.levels[int(rng.integers(len(self.levels)))])

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade one training sample (H, W, C) at a freshly drawn level."""
        return degrade(clean, self.kind, self.draw_level(rng), rng)

    def test_key(self, level: float) -> str:
        """The evaluation key of a level: "sigma25" for AWGN, "q10" for JPEG."""
        return f"sigma{level:g}" if self.kind == "awgn" else f"q{int(level)}"


def degrade(clean: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W, C) float32 clean -> (H, W, C) float32 degraded at `level`."""
    if kind == "jpeg":
        return jpeg_roundtrip(clean, int(level))
    noise = rng.standard_normal(clean.shape, dtype=np.float32)  # (H, W, C)
    return (clean + noise * np.float32(level / 255)).astype(np.float32, copy=False)


def jpeg_roundtrip(clean: np.ndarray, quality: int) -> np.ndarray:
    """Compress (H, W, C) [0, 1] pixels as an 8-bit JPEG with Pillow and decode them."""
    values = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)  # (H, W, C)
    image = Image.fromarray(values[:, :, 0] if values.shape[2] == 1 else values)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer)).astype(np.float32) / np.float32(255)
    return decoded.reshape(clean.shape)  # (H, W, C)


TEST_NOISE_SEED = 0  # the DnCNN / FFDNet / KAIR test scripts: np.random.seed(0) per image


def degrade_for_test(clean: np.ndarray, image_name: str, key: str) -> np.ndarray:
    """The one deterministic test input for (image, key); not clipped.

    `image_name` is part of the contract (a future degradation may seed from it);
    AWGN uses the DnCNN/KAIR draw described in the module docstring."""
    kind, level = parse_test_key(key)
    if kind == "jpeg":
        return jpeg_roundtrip(clean, int(level))
    noise = np.random.RandomState(TEST_NOISE_SEED).normal(0, level / 255, clean.shape)
    return (clean.astype(np.float64) + noise).astype(np.float32)  # (H, W, C)


def parse_test_key(key: str) -> tuple[str, float]:
    """Split a test key: "sigma25" -> ("awgn", 25.0); "q10" -> ("jpeg", 10.0)."""
    match = _TEST_KEY_PATTERN.fullmatch(key)
    if match is None:
        raise ValueError(f"test key must look like 'sigma25' or 'q10', got {key!r}")
    prefix, number = match.groups()
    return ("awgn" if prefix == "sigma" else "jpeg"), float(number)


def _as_levels(key: str, value) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"degradation key {key!r} must be a number or a list of numbers")
    if key == "sigma_range" and len(values) != 2:
        raise ValueError(f"degradation key 'sigma_range' needs [lo, hi], got {value!r}")
    return tuple(float(v) for v in values)


def _check_sigmas(levels: tuple[float, ...], blind: bool) -> None:
    if any(level < 0 for level in levels):
        raise ValueError(f"AWGN sigmas must be >= 0, got {levels}")
    if blind and (len(levels) != 2 or levels[0] > levels[1]):
        raise ValueError(f"blind AWGN needs a range (lo, hi) with lo <= hi, got {levels}")


def _check_qualities(levels: tuple[float, ...], blind: bool) -> None:
    if blind:
        raise ValueError("JPEG qualities are drawn from a list, not a blind range")
    if any(level != int(level) or not 1 <= level <= 100 for level in levels):
        raise ValueError(f"JPEG qualities must be integers in [1, 100], got {levels}")
