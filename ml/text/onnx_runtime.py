"""ONNX Runtime for the sentence model: exported once from the local weights, then served without torch.

- :func:`export_onnx` (needs torch and transformers, so it runs at install or in training) traces the local
  model folder's transformer (``BertModel``: ids, attention mask, token types -> token vectors) with
  ``torch.onnx.export``, fuses it with ONNX Runtime's transformer optimiser (attention, GELU, layer norm) and
  writes an int8 copy (dynamic quantisation of the weights). Nothing is downloaded. The folder also holds a
  ``manifest.json`` naming the source model (its id and weight files' sizes), so a changed model is
  re-exported instead of served stale. Files are written into a temporary folder and moved into place.
- :class:`OnnxEncoder` (needs only onnxruntime and numpy) runs one of those files: padded id batches in,
  pooled (not yet normalised) sentence vectors out. The tokeniser is the ``tokenizers`` library's, read from
  the model folder's ``tokenizer.json`` (see ``ml.text.embedding``), so serving never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import ModelUnavailableError

__all__ = ["ONNX_VARIANTS", "OnnxEncoder", "default_onnx_dir", "export_onnx", "onnx_available", "onnx_files"]

logger = logging.getLogger(__name__)

FORMAT = 2  # 2: int8 per channel, feed-forward outputs kept float
# runtime name -> file in the export folder
ONNX_VARIANTS = {"onnx": "model-fp32.onnx", "onnx-int8": "model-int8.onnx"}
MANIFEST = "manifest.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_onnx_dir() -> Path:
    """``.cache/onnx`` of the source checkout this package runs from (an editable install, as ``make install``
    makes), else ``~/.cache/recur/onnx``."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / ".cache" / "onnx"
    return Path.home() / ".cache" / "recur" / "onnx"


def onnx_available() -> bool:
    """Whether onnxruntime is installed (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _source_signature(model_path: Path, model_id: str) -> dict[str, Any]:
    """What identifies the source model: its id and the size of each weight/config file."""
    files = {}
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        f = model_path / name
        if f.is_file():
            files[name] = f.stat().st_size
    return {"model_id": model_id, "files": files}


def _export_folder(onnx_dir: Path, model_id: str) -> Path:
    slug = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    return Path(onnx_dir) / f"{model_id.rsplit('/', 1)[-1][:40]}-{slug}"


def onnx_files(onnx_dir: Path, model_path: Path, model_id: str) -> Path | None:
    """The export folder for this model when it is complete and made from these weights, else ``None``."""
    folder = _export_folder(onnx_dir, model_id)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if manifest.get("format") != FORMAT or manifest.get("source") != _source_signature(model_path, model_id):
        logger.info("Embedding - ONNX export in %s is for other weights; it will be re-exported", folder)
        return None
    if not all((folder / f).is_file() for f in ONNX_VARIANTS.values()):
        return None
    return folder


def export_onnx(model_path: Path, model_id: str, onnx_dir: Path | None = None, force: bool = False) -> Path:
    """Export the model in `model_path` to ONNX (fp32 fused, and int8) under `onnx_dir`; returns the folder.

    Needs torch, transformers, onnx and onnxruntime. Reuses a complete export of the same weights unless
    `force`.
    """
    onnx_dir = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir()
    model_path = Path(model_path)
    if not force:
        done = onnx_files(onnx_dir, model_path, model_id)
        if done is not None:
            return done
    for mod in ("torch", "transformers", "onnx", "onnxruntime"):
        if importlib.util.find_spec(mod) is None:
            raise ModelUnavailableError(
                f"exporting the embedding model to ONNX needs the {mod} package (pip install {mod})",
                field="runtime",
                value=mod,
            )
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig, AutoModel

    t0 = time.perf_counter()
    config = AutoConfig.from_pretrained(str(model_path), local_files_only=True)
    model = AutoModel.from_pretrained(
        str(model_path), attn_implementation="eager", local_files_only=True
    ).eval()

    class _Tokens(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    onnx_dir.mkdir(parents=True, exist_ok=True)
    final = _export_folder(onnx_dir, model_id)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=onnx_dir))
    try:
        ids = torch.ones((2, 16), dtype=torch.long)
        raw = tmp / "model-raw.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                _Tokens(model),
                (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(raw),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in _INPUTS}
                | {"last_hidden_state": {0: "batch", 1: "tokens"}},
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        fused = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
        )
        fused.save_model_to_file(str(tmp / ONNX_VARIANTS["onnx"]))
        quantize_int8(raw, tmp / ONNX_VARIANTS["onnx-int8"])
        raw.unlink()
        for extra in tmp.glob("*.data"):  # no external-data files are expected for a 90 MB model
            logger.debug("Embedding - ONNX export wrote %s", extra.name)
        manifest = {
            "format": FORMAT,
            "source": _source_signature(model_path, model_id),
            "files": {
                f: {
                    "bytes": (tmp / f).stat().st_size,
                    "sha256": hashlib.sha256((tmp / f).read_bytes()).hexdigest(),
                }
                for f in ONNX_VARIANTS.values()
            },
            "torch": torch.__version__,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "Embedding - exported %s to ONNX (fp32 fused, int8) in %s in %.1fs",
        model_id,
        final,
        time.perf_counter() - t0,
    )
    return final


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of `source` (an unfused export: the quantiser does not know fused operators).

    Only the matrix products, weights per output channel; the feed-forward output projections stay float
    (their inputs, after GELU, have the outliers that cost most agreement). On the sample documents this keeps
    cosine >= 0.99 with torch on every document (all MatMuls per tensor: 0.93 on the worst, per channel 0.989).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [
        n.name for n in onnx.load(str(source), load_external_data=False).graph.node if n.op_type == "MatMul"
    ]
    keep_float = [n for n in names if "/output/dense/" in n and "/attention/" not in n]
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep_float,
    )


class OnnxEncoder:
    """One ONNX file of the model run by ONNX Runtime on the CPU: token ids -> mean-pooled sentence vectors."""

    def __init__(self, file: Path, threads: int, name: str) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Idle threads sleep instead of spinning: a spinning pool doubled the CPU per text with 2 threads
        # (8.5 -> 17 ms for a 48-piece text) and takes the cores the server's event loop needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.name = name
        self.file = Path(file)
        self.session = ort.InferenceSession(str(file), sess_options=opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.threads = threads

    def token_vectors(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states ``(batch, tokens, dim)`` for int64 `ids` and `mask` of shape (batch, tokens)."""
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (out,) = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return np.asarray(out, dtype=np.float32)
