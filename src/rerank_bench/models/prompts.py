"""The prompt templates of decoder rerankers: what their model cards wrap each (query, document) pair in before
reading the answer's "yes" and "no" logits. Resolution, the twin builder, the scorer and will-it-run's token
counts all read them here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rerank_bench.errors import ModelError


@dataclass(frozen=True)
class YesNoTemplate:
    prefix: str
    suffix: str
    pair: str  # with {instruction}, {query} and {document}
    instruction: str
    yes: str = "yes"
    no: str = "no"
    # tokens the template adds to a pair (prefix, the pair's labels and instruction, suffix), where the model's
    # own tokenizer is not at hand: counted with byte-level BPE's pre-tokenizer rule, one token per word,
    # punctuation run and special token (will-it-run's estimate; the scorer counts with the real tokenizer)
    estimated_tokens: int = 0


# https://huggingface.co/Qwen/Qwen3-Reranker-8B (model card, "Transformers Usage"): the system prompt, the
# user turn with instruction, query and document, and an empty thinking block before the answer.
QWEN3_RERANKER = YesNoTemplate(
    prefix=(
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    ),
    suffix="<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    pair="<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
    instruction="Given a web search query, retrieve relevant passages that answer the query",
    estimated_tokens=78,
)

# The template of each decoder family that has a yes/no reranker recipe, by the config's model_type.
TEMPLATES = {"qwen3": QWEN3_RERANKER}


def template_for(model_type: str) -> YesNoTemplate:
    try:
        return TEMPLATES[model_type]
    except KeyError:
        raise ModelError(
            f"no yes/no scoring recipe is known for {model_type} models", f"known: {', '.join(TEMPLATES)}"
        ) from None


def estimated_text_tokens(text: str) -> int:
    """Tokens a byte-level BPE gives a text, estimated by its pre-tokenizer's rule: one per word and per run of
    punctuation (a rare long word splits into more, so this is a floor)."""
    import re

    return len(re.findall(r"\w+|[^\w\s]+", text))


def template_tokens_with(template: YesNoTemplate, base: int, instruction: str | None) -> int:
    """The template's tokens with another instruction: the base count less the card's instruction plus this one."""
    if instruction is None:
        return base
    return base - estimated_text_tokens(template.instruction) + estimated_text_tokens(instruction)
