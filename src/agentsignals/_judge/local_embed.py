"""An in-process embedder: any sentence-transformers model exported to ONNX, run with
onnxruntime, tokenized with a Hugging Face ``tokenizer.json`` (the `embed-local` extra:
onnxruntime, tokenizers, numpy). No server and no download: the caller gives the two files.

Mean pooling over the attention mask, then L2 normalisation (what sentence-transformers does
for all-MiniLM-L6-v2 and most of its models). all-MiniLM-L6-v2 is the model the signal
inventory's thresholds (CP > 0.2 / 0.45, near-duplicate > 0.95) were written for; its int8
ONNX export gives cosines within 0.003 of sentence-transformers' (../shared/models.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["OnnxEmbedder"]


class OnnxEmbedder:
    """An :class:`~agentsignals._features.embedding.Embedder` over an ONNX sentence encoder.

    ``max_tokens`` truncates each text (all-MiniLM-L6-v2 was trained on 256); ``threads``
    bounds onnxruntime's intra-op threads (1 leaves the other core to the host)."""

    def __init__(
        self,
        model_path: str | Path,
        tokenizer_path: str | Path,
        *,
        model: str | None = None,
        max_tokens: int = 256,
        batch: int = 32,
        threads: int = 1,
    ) -> None:
        try:
            import numpy  # noqa: F401
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError(
                "the local embedder needs onnxruntime, tokenizers and numpy: "
                "pip install 'agentsignals[embed-local]'"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer
        self._model = model or Path(model_path).stem
        self.batch = max(1, batch)
        self._lock = threading.Lock()  # one run at a time: the session's threads are bounded

    @property
    def model(self) -> str:
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            out.extend(self._embed(list(texts[start : start + self.batch])))
        return out

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[
                0
            ]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return [[float(x) for x in row] for row in pooled / norms]
