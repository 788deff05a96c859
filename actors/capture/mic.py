"""Microphone capture through PortAudio (``sounddevice``), and the device error messages.

:class:`MicSource` is a push source: PortAudio calls back from its own thread and the callback
hands each float32 block ``(frames, channels)`` to a user ``sink`` (the capture actor writes it
into the audio ring; the ``stream --mic`` client sends it to a gateway).

``sounddevice`` is imported lazily (:func:`import_sounddevice`), so file and stdin capture
work on a machine without PortAudio; a missing PortAudio or input device becomes a
:class:`DeviceError` whose one-line message says what to do instead.
"""

from __future__ import annotations

from types import ModuleType, TracebackType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.capture.formats import MicSink, SourceFormat
from streamasr.actors.errors import DeviceError

__all__ = [
    "NO_DEVICE_MSG",
    "NO_PORTAUDIO_MSG",
    "PORTAUDIO_INIT_MSG",
    "MicSource",
    "import_sounddevice",
    "list_input_devices",
]

NO_PORTAUDIO_MSG: Final = (
    "PortAudio library not found ({err}); install libportaudio2, or use --source FILE.wav "
    "or --source - for raw PCM on stdin"
)
PORTAUDIO_INIT_MSG: Final = (
    "PortAudio failed to initialise ({err}); check the audio system (ALSA config), or use "
    "--source FILE.wav or --source - for raw PCM on stdin"
)
NO_DEVICE_MSG: Final = (
    "no input device found (PortAudio sees none); use --source FILE.wav "
    "or --source - for raw PCM on stdin"
)


def import_sounddevice() -> ModuleType:
    """Import ``sounddevice``; a missing or broken PortAudio becomes :class:`DeviceError`.

    A missing library raises OSError; ``Pa_Initialize`` failing (it runs at import) raises
    ``sounddevice.PortAudioError``, which cannot be named before the import succeeds.
    """
    try:
        import sounddevice
    except OSError as exc:
        raise DeviceError(NO_PORTAUDIO_MSG.format(err=exc)) from exc
    except Exception as exc:  # sounddevice.PortAudioError from Pa_Initialize
        raise DeviceError(PORTAUDIO_INIT_MSG.format(err=exc)) from exc
    module: ModuleType = sounddevice
    return module


def list_input_devices() -> list[dict[str, Any]]:
    """Input-capable devices PortAudio sees.

    Returns:
        One dict per device: ``name`` (str), ``index`` (int), ``channels`` (max input
        channels), ``default_rate_hz`` (float, Hz), ``is_default`` (bool).

    Raises:
        DeviceError: PortAudio is not installed.
    """
    sd = import_sounddevice()
    default_in = sd.default.device[0]
    devices: list[dict[str, Any]] = []
    for dev in sd.query_devices():
        if int(dev["max_input_channels"]) <= 0:
            continue
        index = int(dev["index"])
        devices.append(
            {
                "name": str(dev["name"]),
                "index": index,
                "channels": int(dev["max_input_channels"]),
                "default_rate_hz": float(dev["default_samplerate"]),
                "is_default": index == default_in,
            }
        )
    return devices


class MicSource:
    """Microphone capture through ``sounddevice.InputStream`` with a callback.

    The callback (:meth:`handle_block`) runs on PortAudio's thread. It performs no allocation
    of its own, takes no lock and never logs: it bumps plain int counters for PortAudio's
    status flags and calls ``sink(indata, frames, status_flags)``. ``indata`` is only valid
    during the call; the sink must copy it (into the ring). An exception from the sink is
    kept in :attr:`sink_error` and the stream is aborted; :meth:`raise_if_failed` reports it.
    """

    def __init__(
        self,
        sink: MicSink,
        fmt: SourceFormat,
        *,
        device: str | int | None = None,
        block_frames: int = 0,
        latency: str | float = "low",
        dtype: str = "float32",
    ) -> None:
        """Prepare a capture of ``fmt`` (rate Hz, channels) from ``device`` (None = default).

        ``block_frames`` = 0 lets PortAudio choose the callback size (lowest latency).
        ``dtype`` is the sample type handed to the sink: ``"float32"`` in [-1, 1] (what the
        capture actor takes) or ``"int16"`` (the device's own 16-bit samples).
        """
        self._sink = sink
        self._format = fmt
        self._device = device
        self._block_frames = block_frames
        self._latency = latency
        if dtype not in ("float32", "int16"):
            raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}")
        self._dtype = dtype
        self._stream: Any = None
        self._stopping = False
        self.callbacks = 0
        self.frames_captured = 0
        self.input_overflows = 0
        self.input_underflows = 0
        self.priming_outputs = 0
        self.sink_error: BaseException | None = None

    @property
    def format(self) -> SourceFormat:
        """Rate (Hz) and channels being captured."""
        return self._format

    def handle_block(
        self, indata: NDArray[np.float32], frames: int, _time: Any, status: Any
    ) -> None:
        """PortAudio callback: count status flags, hand the block to the sink."""
        if status:
            if status.input_overflow:
                self.input_overflows += 1
            if status.input_underflow:
                self.input_underflows += 1
            if status.priming_output:
                self.priming_outputs += 1
        self.callbacks += 1
        self.frames_captured += frames
        try:
            self._sink(indata, frames, status)
        except BaseException as exc:  # reported by raise_if_failed() off the audio thread
            self.sink_error = exc
            raise import_sounddevice().CallbackAbort from exc

    def start(self) -> None:
        """Open and start the input stream.

        Raises:
            DeviceError: PortAudio missing, no input device, or the device refused to open.
        """
        sd = import_sounddevice()
        if self._device is None and not list_input_devices():
            raise DeviceError(NO_DEVICE_MSG)
        try:
            self._stream = sd.InputStream(
                samplerate=self._format.sample_rate_hz,
                channels=self._format.channels,
                dtype=self._dtype,
                device=self._device,
                blocksize=self._block_frames,
                latency=self._latency,
                callback=self.handle_block,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            self._stream = None
            raise DeviceError(f"cannot open input device {self._device!r}: {exc}") from exc
        self._stopping = False

    @property
    def active(self) -> bool:
        """True while the stream is running."""
        return self._stream is not None and bool(self._stream.active)

    def raise_if_failed(self) -> None:
        """Raise :class:`DeviceError` if the sink failed or the stream stopped on its own."""
        if self.sink_error is not None:
            raise DeviceError(f"capture sink failed: {self.sink_error!r}") from self.sink_error
        if self._stream is not None and not self._stopping and not self._stream.active:
            raise DeviceError("input stream stopped unexpectedly (device unplugged?)")

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        self._stopping = True
        if self._stream is not None:
            self._stream.close(ignore_errors=True)
            self._stream = None

    def __enter__(self) -> MicSource:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
