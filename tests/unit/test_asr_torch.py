"""Torch CTC backend against a tiny scripted model with known, deterministic output.

The model maps feature band ``k`` (a one-hot frame) to token id ``k`` with a one-frame delay
held in its state (so an un-carried state would drop tokens at chunk boundaries), and counts
the frames it has seen in ``state[:, 0]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from streamasr.actors.asr.decode import endpoints
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result
from streamasr.actors.errors import AudioFormatError, ConfigError, ModelError

torch = pytest.importorskip("torch", reason="the torch backend is the extra streamasr[torch]")
nn = torch.nn

from streamasr.actors.asr.torch_backend import (  # noqa: E402  (needs torch)
    TorchCtcRecognizer,
    TorchCtcStream,
    quantize_module,
)

TOKENS = ("<blk>", "|", "a", "b", "c", "h", "i", "o")
N_MELS = len(TOKENS)
ENDPOINT = 6

# torch 2.13 marks torch.jit.script/load deprecated; TorchScript is still the model contract.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class TinyCtc(nn.Module):
    """Delayed one-hot band -> token model; state = [frame counter, previous frame]."""

    def __init__(self) -> None:
        super().__init__()
        self.state_dim = 1 + N_MELS
        self.proj = nn.Linear(N_MELS, N_MELS, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(N_MELS) * 10.0)

    def forward(
        self, feats: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        prev = state[:, 1:].unsqueeze(1)
        shifted = torch.cat([prev, feats[:, :-1]], dim=1)
        logits = self.proj(shifted)
        counter = state[:, :1] + feats.shape[1]
        return torch.log_softmax(logits, dim=-1), torch.cat([counter, feats[:, -1]], dim=1)

    @torch.jit.export
    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.state_dim)


class NoStateMethod(nn.Module):
    """Same mapping without delay and without an initial_state method."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(N_MELS, N_MELS, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(N_MELS) * 10.0)

    def forward(
        self, feats: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.log_softmax(self.proj(feats), dim=-1), state + feats.shape[1]


def feats_for(text: str, trailing_blanks: int = ENDPOINT + 2) -> npt.NDArray[np.float32]:
    """One-hot frames spelling ``text``: 2 frames per character, a blank after each."""
    ids: list[int] = [0, 0]
    for ch in text:
        ids += [TOKENS.index("|" if ch == " " else ch)] * 2 + [0]
    ids += [0] * trailing_blanks
    return np.eye(N_MELS, dtype=np.float32)[ids]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.jit.script(TinyCtc()).save(str(path))  # type: ignore[no-untyped-call]
    return path


def make(model_path: Path, **kw: object) -> TorchCtcRecognizer:
    opts: dict[str, object] = {
        "model_path": str(model_path),
        "tokens": list(TOKENS),
        "n_mels": N_MELS,
        "endpoint_blank_frames": ENDPOINT,
        "preroll_frames": 2,
    }
    opts.update(kw)
    rec = create_recognizer("torch", opts)
    assert isinstance(rec, TorchCtcRecognizer)
    return rec


def run(stream: TorchCtcStream, feats: npt.NDArray[np.float32], chunk: int) -> list[Result]:
    finals: list[Result] = []
    for _, final in endpoints(stream, feats, chunk):
        assert final is not None
        finals.append(final)
    return finals


def test_one_shot_decodes_exact_text_and_word_times(model_path: Path) -> None:
    rec = make(model_path)
    stream = rec.create_stream()
    finals = run(stream, feats_for("hi bob"), 1000)
    assert [f.text for f in finals] == ["hi bob"]
    final = finals[0]
    # 'h' occupies input frames 2-3; the model's one-frame delay emits it at output frame 3.
    assert final.words[0].word == "hi" and final.words[0].start_s == pytest.approx(0.03)
    assert final.words[1].word == "bob"
    assert final.start_frame == 1  # first token frame 3 minus preroll 2
    assert final.is_final and all(0.9 < w.conf <= 1.0 for w in final.words)
    assert stream.state[0, 0].item() == len(feats_for("hi bob"))


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_decode_equals_one_shot(model_path: Path, chunk: int) -> None:
    rec = make(model_path)
    feats = np.concatenate([feats_for("hi bob"), feats_for("ca ab"), feats_for("oh")])
    one_shot = run(rec.create_stream(), feats, len(feats))
    chunked = run(rec.create_stream(), feats, chunk)
    assert [f.text for f in one_shot] == ["hi bob", "ca ab", "oh"]
    assert chunked == one_shot


def test_endpoint_then_new_utterance_and_positions(model_path: Path) -> None:
    rec = make(model_path)
    stream = rec.create_stream(start_frame=1000)
    feats = feats_for("ab")
    stream.accept(feats[:9])
    while stream.is_ready():
        stream.step()
    partial = stream.result()
    assert partial is not None and partial.text == "ab" and not partial.is_final
    assert not stream.is_endpoint()
    assert stream.utterance_start_frame == 1000 + 3 - 2
    stream.accept(feats[9:])
    while stream.is_ready():
        stream.step()
    assert stream.is_endpoint()
    assert not stream.is_ready()  # an endpoint waits for finalize()
    final = stream.finalize()
    assert final is not None and final.text == "ab" and final.start_frame == 1001
    assert final.words[0].start_s == pytest.approx(1003 / 100)
    assert stream.utterance_start_frame is None and stream.result() is None
    assert stream.position_frame == 1000 + len(feats)
    assert stream.finalize() is None  # idle: nothing to finalize


def test_blank_only_input_gives_no_result(model_path: Path) -> None:
    rec = make(model_path)
    stream = rec.create_stream()
    stream.accept(np.eye(N_MELS, dtype=np.float32)[[0] * 40])
    while stream.is_ready():
        stream.step()
    assert not stream.is_endpoint()
    assert stream.result() is None and stream.finalize() is None


def test_quantized_model_still_decodes(model_path: Path) -> None:
    rec = make(model_path, quantize_int8=True)
    assert "quantized::linear_dynamic" in str(rec.model.graph)
    finals = run(rec.create_stream(), feats_for("hi bob"), 5)
    assert [f.text for f in finals] == ["hi bob"]


def test_eager_quantized_then_scripted_model_decodes(tmp_path: Path) -> None:
    path = tmp_path / "q.pt"
    torch.jit.script(quantize_module(TinyCtc())).save(str(path))  # type: ignore[no-untyped-call,unused-ignore]
    rec = make(path)
    assert [f.text for f in run(rec.create_stream(), feats_for("abc"), 4)] == ["abc"]


def test_decode_batch_equals_individual_decodes(model_path: Path) -> None:
    rec = make(model_path, chunk_frames=4)
    texts = ["hi bob", "oh", "ca ab"]
    feats = [feats_for(t, trailing_blanks=30) for t in texts]
    n = max(len(f) for f in feats)
    feats = [
        np.concatenate([f, np.eye(N_MELS, dtype=np.float32)[[0] * (n - len(f))]]) for f in feats
    ]
    singles = [run(rec.create_stream(), f, 4) for f in feats]
    streams = [rec.create_stream() for _ in texts]
    batched: list[list[Result]] = [[] for _ in texts]
    for i in range(0, n, 4):
        rec.decode_batch(streams, [f[i : i + 4] for f in feats])
        for k, s in enumerate(streams):
            while s.is_endpoint():
                final = s.finalize()
                assert final is not None
                batched[k].append(final)
                while s.is_ready():
                    s.step()
    assert [[f.text for f in b] for b in batched] == [[t] for t in texts]
    assert batched == singles
    for s in streams:  # whole 4-frame chunks went through the model, the rest is pending
        assert s.state[0, 0].item() == n - n % 4
        assert s.position_frame == n


def test_state_shape_option_for_model_without_initial_state(tmp_path: Path) -> None:
    path = tmp_path / "nostate.pt"
    torch.jit.script(NoStateMethod()).save(str(path))  # type: ignore[no-untyped-call]
    with pytest.raises(ModelError, match="has no initial_state"):
        make(path).create_stream()
    rec = make(path, state_shape=[1, 1])
    stream = rec.create_stream()
    assert [f.text for f in run(stream, feats_for("ab"), 3)] == ["ab"]
    assert stream.state.item() == len(feats_for("ab"))


def test_errors(model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^inference\.torch\.foo: unknown key$"):
        make(model_path, foo=1)
    with pytest.raises(ConfigError, match=r"inference\.torch\.chunk_frames: must be a multiple"):
        make(model_path, subsampling=4, chunk_frames=6)
    with pytest.raises(ConfigError, match=r"inference\.torch\.quantize_int8: must be bool"):
        make(model_path, quantize_int8=1)
    with pytest.raises(ModelError, match="cannot load"):
        make(tmp_path / "missing.pt")
    rec = make(model_path, tokens=list(TOKENS[:-1]))
    stream = rec.create_stream()
    stream.accept(feats_for("a"))
    with pytest.raises(
        ModelError, match=r"model returned log_probs \(1, 13, 8\), expected \(1, 13, 7\)$"
    ):
        stream.step()
    with pytest.raises(AudioFormatError, match="expected float32"):
        make(model_path).create_stream().accept(np.zeros((3, N_MELS), dtype=np.float64))


def test_tokens_path_and_warm_up(model_path: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    rec = make(model_path, tokens=[], tokens_path=str(tokens))
    assert rec.tokens == TOKENS
    rec.warm_up()
    assert [f.text for f in run(rec.create_stream(), feats_for("oh"), 2)] == ["oh"]
