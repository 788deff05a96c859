"""Build a recogniser from a config table (``[inference.<backend>]`` in the TOML config).

``create_recognizer("pocketsphinx", {"endpoint_silence_ms": 500})`` checks every key against the
backend's frozen options dataclass, rejecting unknown keys and wrongly typed values with a
:class:`ConfigError` naming the key path (``inference.pocketsphinx.foo: unknown key``), then loads
the engine.  The torch backend is imported lazily so that PocketSphinx users never pay torch's
import time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Mapping
from typing import TypeVar

from streamasr.actors.asr.base import Recognizer
from streamasr.actors.errors import ConfigError
from streamasr.actors.typed import fields_of

__all__ = ["BACKENDS", "NO_TORCH_MSG", "check_torch", "create_recognizer", "options_from_mapping"]

#: The one-line error when the torch backend is chosen without the optional extra.
NO_TORCH_MSG = (
    "inference.backend: 'torch' needs PyTorch, which is not installed: "
    "pip install 'streamasr[torch]'"
)

BACKENDS = ("pocketsphinx", "torch")

T = TypeVar("T")


def options_from_mapping(cls: type[T], table: Mapping[str, object], prefix: str) -> T:
    """An instance of the options dataclass ``cls`` from a config table.

    Raises ConfigError ``"<prefix>.<key>: unknown key"`` for a key that is not a field, a
    type error naming the key, or the dataclass's own validation error prefixed with ``prefix``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    kwargs = fields_of(cls, dict(table), prefix)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}.{exc}") from exc
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{prefix}: {exc}") from exc


def create_recognizer(
    backend: str, options: Mapping[str, object], prefix: str = "inference"
) -> Recognizer:
    """Load the recogniser ``backend`` (``"pocketsphinx"`` or ``"torch"``) with ``options``.

    ``prefix`` is the config path of the backend tables, used in error messages.
    Raises ConfigError for an unknown backend or option, ModelError if the model fails to load.
    """
    path = f"{prefix}.{backend}"
    if backend == "pocketsphinx":
        from streamasr.actors.asr.pocketsphinx_backend import (
            PocketsphinxOptions,
            PocketsphinxRecognizer,
        )

        return PocketsphinxRecognizer(options_from_mapping(PocketsphinxOptions, options, path))
    if backend == "torch":
        check_torch()
        try:
            from streamasr.actors.asr.torch_backend import TorchCtcOptions, TorchCtcRecognizer
        except ImportError as exc:
            if exc.name != "torch":
                raise
            raise ConfigError(NO_TORCH_MSG) from None

        return TorchCtcRecognizer(options_from_mapping(TorchCtcOptions, options, path))
    raise ConfigError(f"{prefix}.backend: unknown backend {backend!r} (expected one of {BACKENDS})")


def check_torch() -> None:
    """Raise ConfigError naming ``pip install 'streamasr[torch]'`` unless PyTorch is installed.

    The torch backend is an optional extra; an inference process that is asked for it without
    the extra fails before Ready with this one line (a configuration error, no restart loop).
    """
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        found = False
    if not found:
        raise ConfigError(NO_TORCH_MSG)
