"""Decoder rerankers scored as their model cards do: the pair wrapped in the card's prompt template, batches
padded on the left, one forward pass without a KV cache, and the probability of "yes" against "no" at the
last position (log-softmax over those two logits). transformers computes the language-model head for the last
position only (logits_to_keep=1), so the logits are batch x vocabulary, not batch x length x vocabulary.

The template's tokens are part of every pair: token counts, padding and FLOPs include them.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

from rerank_bench.backends.base import LoadInfo, Scorer
from rerank_bench.errors import ModelError
from rerank_bench.models.prompts import template_for
from rerank_bench.workload.records import Request
from rerank_bench.workload.requests import single_token_words


class CausalYesNoScorer(Scorer):
    supports_shared_prefix = True

    def __init__(
        self, model: Any, tokenizer: Any, torch: Any, device: str, info: LoadInfo, instruction: str | None = None
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.torch = torch
        self.device = device
        self.info = info
        self.template = template_for(model.config.model_type)
        self.instruction = self.template.instruction if instruction is None else instruction
        self.instruction_text = self.template.instruction_text(instruction)
        bos = [tokenizer.bos_token_id] if self.template.bos else []
        self.prefix = bos + tokenizer.encode(self.template.prefix, add_special_tokens=False)
        self.suffix = tokenizer.encode(self.template.suffix, add_special_tokens=False)
        self.yes_id = tokenizer.convert_tokens_to_ids(self.template.yes)
        self.no_id = tokenizer.convert_tokens_to_ids(self.template.no)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = tokenizer.pad_token_id

    def encoder_shape(self) -> Any:
        from rerank_bench.models.flops import EncoderShape

        return EncoderShape.from_config(self.model.config, causal=True)

    def words(self) -> list[str]:
        return single_token_words(self.tokenizer)

    def pair_ids(self, request: Request) -> list[list[int]]:
        """Each pair as the model card builds it: prefix, the formatted pair truncated to what the template
        leaves of max_length, suffix."""
        budget = max(1, self.info.max_length - len(self.prefix) - len(self.suffix))
        if self.template.parts:
            return [self.prefix + self._joined(request.query, doc, budget) + self.suffix for doc in request.documents]
        texts = [
            self.template.pair.format(instruction=self.instruction_text, query=request.query, document=doc)
            for doc in request.documents
        ]
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        return [self.prefix + ids + self.suffix for ids in encoded]

    def _joined(self, query: str, document: str, budget: int) -> list[int]:
        """The template's parts tokenized one by one (FlagEmbedding's way): the query's part cut to 3/4 of the
        budget, the document's to what the other parts leave."""
        values = {"instruction": self.instruction_text, "query": query, "document": document}
        pieces = [self.tokenizer.encode(p.format(**values), add_special_tokens=False) for p in self.template.parts]
        kinds = ["query" if "{query}" in p else "document" if "{document}" in p else "" for p in self.template.parts]
        for i, kind in enumerate(kinds):
            if kind == "query":
                pieces[i] = pieces[i][: budget * 3 // 4]
        fixed = sum(len(piece) for piece, kind in zip(pieces, kinds, strict=True) if kind != "document")
        for i, kind in enumerate(kinds):
            if kind == "document":
                pieces[i] = pieces[i][: max(0, budget - fixed)]
        return [token for piece in pieces for token in piece]

    def pair_token_counts(self, request: Request) -> list[int]:
        return [len(ids) for ids in self.pair_ids(request)]

    def query_token_count(self, query: str) -> int:
        return len(self.tokenizer(query, add_special_tokens=False)["input_ids"])

    def score(self, request: Request, batch_size: int) -> list[float]:
        if self.prefix_mode == "shared":
            return self._score_shared(request, batch_size)
        from rerank_bench.backends.padded_scorer import batch_indices

        torch = self.torch
        ids = self.pair_ids(request)
        lengths = [len(x) for x in ids]
        out = [0.0] * len(ids)
        for batch in batch_indices(lengths, batch_size, self.order):
            width = max(lengths[i] for i in batch)
            # left padding: every pair's last real token sits at the last position
            input_ids = [[self.pad_id] * (width - lengths[i]) + ids[i] for i in batch]
            mask = [[0] * (width - lengths[i]) + [1] * lengths[i] for i in batch]
            self.count_batch(width * len(batch), sum(lengths[i] for i in batch))
            with torch.inference_mode():
                logits = self.model(
                    input_ids=torch.tensor(input_ids, device=self.device),
                    attention_mask=torch.tensor(mask, device=self.device),
                    logits_to_keep=1,
                    use_cache=False,
                ).logits[:, -1, :]
                yes = self._yes(logits)
            for i, value in zip(batch, yes, strict=True):
                out[i] = value
        return out

    def _yes(self, logits: Any) -> list[float]:
        torch = self.torch
        if self.template.score == "yes-logit":
            return [float(v) for v in logits[:, self.yes_id].float().tolist()]
        if self.template.score == "yes-minus-no":
            return [float(v) for v in (logits[:, self.yes_id] - logits[:, self.no_id]).float().tolist()]
        pair = torch.stack([logits[:, self.no_id], logits[:, self.yes_id]], dim=1).float()
        return [float(v) for v in torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().tolist()]

    def _score_shared(self, request: Request, batch_size: int) -> list[float]:
        """The shared-prefix layout: the tokens every pair of the request begins with (system prompt,
        instruction and query: the longest common prefix of the pairs' own token ids, so the tokens are exactly
        the per-pair layout's) run once, and each batch runs only the pairs' remaining tokens against that
        prefix's keys and values, padded on the right. Each pair's score is read at its own last token. The
        prefix counts once in the computed tokens; real tokens are every pair's, as in the per-pair layout."""
        from rerank_bench.backends.padded_scorer import batch_indices

        torch = self.torch
        ids = self.pair_ids(request)
        # the leading tokens every pair shares (os.path.commonprefix compares any sequences), leaving at least
        # one token of each pair after it: the score is read at a pair's own last position
        common = min(len(os.path.commonprefix(ids)), min(len(x) for x in ids) - 1)
        tails = [x[common:] for x in ids]
        lengths = [len(x) for x in tails]
        out = [0.0] * len(ids)
        decoder = self.model.get_decoder()
        head = self.model.get_output_embeddings()
        with torch.inference_mode():
            cache = None
            if common:
                prefix_ids = torch.tensor([ids[0][:common]], device=self.device)
                cache = decoder(input_ids=prefix_ids, use_cache=True).past_key_values
                self.count_batch(common, 0)
            for batch in batch_indices(lengths, batch_size, self.order):
                width = max(lengths[i] for i in batch)
                input_ids = [tails[i] + [self.pad_id] * (width - lengths[i]) for i in batch]
                mask = [[1] * common + [1] * lengths[i] + [0] * (width - lengths[i]) for i in batch]
                self.count_batch(width * len(batch), sum(len(ids[i]) for i in batch))
                past = None
                if cache is not None:
                    past = copy.deepcopy(cache)  # each batch appends its own tokens to the copy
                    past.batch_repeat_interleave(len(batch))
                hidden = decoder(
                    input_ids=torch.tensor(input_ids, device=self.device),
                    attention_mask=torch.tensor(mask, device=self.device),
                    past_key_values=past,
                    use_cache=past is not None,
                ).last_hidden_state
                last = torch.tensor([lengths[i] - 1 for i in batch], device=self.device)
                rows = hidden[torch.arange(len(batch), device=self.device), last]
                for i, value in zip(batch, self._yes(head(rows)), strict=True):
                    out[i] = value
        return out

    def memory_tracker(self) -> Any:
        from rerank_bench.backends.memory import tracker_for

        return tracker_for(self.torch, self.device)

    def close(self) -> None:
        del self.model


def load_causal(
    model: Any, path: str, device: str, dtype: Any, threads: int, max_length: int | None, attention: str = ""
) -> Any:
    """A yes/no scorer for the decoder reranker at `path` (a folder or Hub id), on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    kwargs = model.loading_kwargs()
    start = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left", **kwargs)
        extra = {"attn_implementation": attention} if attention else {}
        hf_model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs, **extra)
        hf_model = hf_model.to(device).eval()
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load {model.spec}: {exc}".splitlines()[0]) from None
    limit = max_length or min(int(getattr(tokenizer, "model_max_length", 8192) or 8192), 8192)
    return hf_model, tokenizer, time.perf_counter() - start, limit
