"""The torch backend: sentence-transformers' CrossEncoder on PyTorch, on CPU, CUDA or MPS.

A timed query is exactly what a user's code runs: `CrossEncoder.predict(pairs, batch_size=B)` (tokenize,
forward, activation, copy to host), then a device synchronise so no queued GPU work escapes the clock.
"""

from __future__ import annotations

import time
from typing import Any

from rerank_bench.backends import get_spec
from rerank_bench.backends.base import Backend, LoadInfo, Scorer
from rerank_bench.backends.hf_checkpoint import capture_missing_keys, model_source
from rerank_bench.backends.memory import tracker_for
from rerank_bench.errors import EnvironmentProblem, ModelError
from rerank_bench.models.heads import HEAD_SEED, head_keys, refuse_random_head
from rerank_bench.models.resolve import ResolvedModel
from rerank_bench.workload.records import Request
from rerank_bench.workload.requests import single_token_words

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchScorer(Scorer):
    def __init__(self, model: Any, torch: Any, device: str, info: LoadInfo) -> None:
        self.model = model
        self.torch = torch
        self.device = device
        self.info = info
        self.tokenizer = model.tokenizer
        self._instrument_padding()

    def _instrument_padding(self) -> None:
        """Count padded and real tokens of every batch predict() builds (its own sorting and padding)."""
        original = self.model.preprocess

        def counting(*args: Any, **kwargs: Any) -> Any:
            features = original(*args, **kwargs)
            mask = features.get("attention_mask") if hasattr(features, "get") else None
            if mask is not None:
                self.count_batch(int(mask.numel()), int(mask.sum()))
            return features

        self.model.preprocess = counting

    def encoder_shape(self) -> Any:
        from rerank_bench.models.flops import EncoderShape

        try:
            return EncoderShape.from_config(self.model.config)
        except (AttributeError, TypeError, ValueError):
            return None

    def words(self) -> list[str]:
        return single_token_words(self.tokenizer)

    def pair_token_counts(self, request: Request) -> list[int]:
        encoded = self.tokenizer(
            [request.query] * len(request.documents),
            list(request.documents),
            truncation=True,
            max_length=self.info.max_length,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def query_token_count(self, query: str) -> int:
        return len(self.tokenizer(query, add_special_tokens=False)["input_ids"])

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize(self.device)
        elif self.device == "mps":
            self.torch.mps.synchronize()

    def score(self, request: Request, batch_size: int) -> list[float]:
        pairs = [(request.query, doc) for doc in request.documents]
        if self.order == "given":
            # Exactly the user's call. sentence-transformers >= 6 sorts the pairs by input length inside it.
            scores = self.model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
            self._sync()
            return [float(s) for s in scores]
        # length or tokens:N: batches are formed here by token length, one predict call per batch, so
        # predict's own sort cannot regroup them.
        from rerank_bench.backends.padded_scorer import batch_indices

        out = [0.0] * len(pairs)
        for batch in batch_indices(self.pair_token_counts(request), batch_size, self.order):
            scores = self.model.predict(
                [pairs[i] for i in batch], batch_size=len(batch), show_progress_bar=False, convert_to_numpy=True
            )
            for i, value in zip(batch, scores, strict=False):
                out[i] = float(value)
        self._sync()
        return out

    def memory_tracker(self) -> Any:
        return tracker_for(self.torch, self.device)

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


class TorchBackend(Backend):
    name = "torch"

    def _load_causal(
        self,
        model: ResolvedModel,
        path: str,
        tokenizer_source: str,
        device: str,
        dtype: str,
        threads: int,
        max_length: int | None,
        attention: str = "",
    ) -> Scorer:
        """A decoder reranker: its language-model head scores yes against no (backends/causal_lm.py)."""
        import torch

        from rerank_bench.backends.causal_lm import CausalYesNoScorer, load_causal

        hf_model, tokenizer, load_s, limit = load_causal(
            model, path, device, getattr(torch, TORCH_DTYPES[dtype]), threads, max_length, attention
        )
        info = LoadInfo(
            load_s=load_s,
            weights=model.weights,
            tokenizer=tokenizer_source,
            max_length=limit,
            revision=model.revision,
            gpu_name=torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
            backend_options="yes/no at the last position (logits_to_keep=1), left padding"
            + f", attention {hf_model.config._attn_implementation}"
            + (f", instruction {model.instruction!r}" if model.instruction is not None else ""),
        )
        return CausalYesNoScorer(hf_model, tokenizer, torch, device, info, model.instruction)

    def load(
        self,
        model: ResolvedModel,
        device: str,
        dtype: str,
        threads: int,
        max_length: int | None,
        calibration: dict[str, Any] | None = None,  # unused: nothing here is calibrated
        attention: str = "",  # attn_implementation for transformers; "": its own choice
    ) -> Scorer:
        import torch
        import transformers
        from sentence_transformers import CrossEncoder

        get_spec(self.name).check(dtype, device)
        torch.set_num_threads(threads)
        path, tokenizer_source = model_source(model, max_length)
        if model.scoring == "yes-no":
            return self._load_causal(model, path, tokenizer_source, device, dtype, threads, max_length, attention)
        # transformers 5 renamed torch_dtype to dtype
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        model_kwargs: dict[str, Any] = {dtype_key: getattr(torch, TORCH_DTYPES[dtype])}
        if attention:
            model_kwargs["attn_implementation"] = attention
        kwargs: dict[str, Any] = {"device": device, "model_kwargs": model_kwargs, **model.loading_kwargs()}
        if max_length is not None:
            kwargs["max_length"] = max_length
        start = time.perf_counter()
        torch.manual_seed(HEAD_SEED)  # a missing head is initialised the same in every process and backend
        try:
            with capture_missing_keys() as missing:
                cross_encoder = CrossEncoder(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not load {model.spec}: {exc}".splitlines()[0]) from None
        except RuntimeError as exc:
            if "CUDA" in str(exc) or "MPS" in str(exc):
                raise EnvironmentProblem(f"cannot use {device}: {exc}".splitlines()[0]) from None
            raise
        load_s = time.perf_counter() - start

        vocab = getattr(cross_encoder.model.config, "vocab_size", None) if cross_encoder.model is not None else None
        tokens = len(cross_encoder.tokenizer) if cross_encoder.tokenizer is not None else 0
        if vocab and tokens < vocab // 2:
            raise ModelError(
                f"{model.spec}: its tokenizer has {tokens} tokens for a model with {vocab} embeddings, so "
                "transformers fell back to a placeholder tokenizer (missing or unreadable tokenizer files)",
                "save the model's tokenizer next to it with tokenizer.save_pretrained",
            )
        weights = model.weights
        head = head_keys(missing)
        if head and model.source != "twin":
            refuse_random_head(
                f"loading {model.spec} left {', '.join(head[:3])} newly initialised", model.allow_random_head
            )
            weights = f"{weights}+random-head"
        actual_max = getattr(cross_encoder, "max_seq_length", None) or max_length or 512
        gpu_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
        info = LoadInfo(
            load_s=load_s,
            weights=weights,
            tokenizer=tokenizer_source,
            max_length=int(actual_max),
            revision=model.revision,
            gpu_name=gpu_name,
            backend_options=f"attention {getattr(cross_encoder.model.config, '_attn_implementation', None) or 'eager'}",
        )
        return TorchScorer(cross_encoder, torch, device, info)
