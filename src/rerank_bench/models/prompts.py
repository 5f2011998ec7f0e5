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
    bos: bool = False  # the tokenizer's begin-of-sequence token before the prefix
    # "yes-vs-no": the probability of yes against no at the last position (log-softmax over the two logits);
    # "yes-logit": the raw logit of yes there, as FlagEmbedding's FlagLLMReranker scores; "yes-minus-no": the
    # logit of yes less the logit of no (mxbai-rerank v2)
    score: str = "yes-vs-no"
    # How an instruction enters the template's {instruction}: formatted with it, and empty when the instruction
    # is (a template whose instruction is optional, such as mxbai-rerank v2's, has "" as its default)
    instruction_format: str = "{instruction}"
    # Tokenized piece by piece and joined (FlagEmbedding's way), rather than `pair` formatted and tokenized as
    # one text: the query piece truncated to 3/4 of the length, the document's to what is left. Empty: `pair`.
    parts: tuple[str, ...] = ()
    # tokens the template adds to a pair (prefix, the pair's labels and instruction, suffix), where the model's
    # own tokenizer is not at hand: counted with byte-level BPE's pre-tokenizer rule, one token per word,
    # punctuation run and special token (will-it-run's estimate; the scorer counts with the real tokenizer)
    estimated_tokens: int = 0

    def instruction_text(self, instruction: str | None) -> str:
        """What fills {instruction}: the given instruction (None: the card's default) in instruction_format, or
        nothing where the instruction is empty."""
        value = self.instruction if instruction is None else instruction
        return self.instruction_format.format(instruction=value) if value else ""


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

# BAAI/bge-reranker-v2-gemma, scored as FlagEmbedding's FlagLLMReranker does (its `_get_inputs` and
# `compute_score`, https://github.com/FlagOpen/FlagEmbedding): <bos>, then "A: {query}", "\n", "B: {passage}",
# "\n" and the prompt, each tokenized on its own; the query truncated to 3/4 of the length, the passage to the
# rest; the score is the logit of "Yes" at the last position. Template tokens: <bos> 1, "A:" 2, "\n" 1, "B:" 2,
# "\n" 1 and the prompt's 32 words and punctuation runs: 39.
BGE_GEMMA_RERANKER = YesNoTemplate(
    prefix="",
    suffix="",
    pair="A: {query}\nB: {document}\n{instruction}",
    instruction=(
        "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
        "providing a prediction of either 'Yes' or 'No'."
    ),
    yes="Yes",
    no="No",
    bos=True,
    score="yes-logit",
    parts=("A: {query}", "\n", "B: {document}", "\n", "{instruction}"),
    estimated_tokens=39,
)

MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "
    "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)

# mixedbread-ai/mxbai-rerank-base-v2 and -large-v2 (Qwen2 causal LMs), as mixedbread's mxbai-rerank package
# scores them (its code as adapted, Apache-2.0, in AnswerDotAI's rerankers, rerankers/models/mxbai_v2.py): Qwen's
# default system turn, then "query: {query}" (with "instruction: {instruction}\n" before it when one is given),
# "\n", "document: {document}", "\n", the task prompt and the assistant turn, each tokenized on its own; the
# score is the logit of "1" less the logit of "0" at the last position. The package cuts a document at a quarter
# of max_length (2,048 tokens at its 8,192); here the document gets what the query leaves, as for
# bge-reranker-v2-gemma: the same for every document under 2,048 tokens. Template tokens, estimated: the system
# turn 23, "query:" 2, "\n" 1, "document:" 2, "\n" 1, the task prompt 49, the assistant turn 5: 83.
MXBAI_RERANK_V2 = YesNoTemplate(
    prefix=(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n"
    ),
    suffix="<|im_end|>\n<|im_start|>assistant\n",
    pair="{instruction}query: {query}\ndocument: {document}\n" + MXBAI_TASK,
    instruction="",
    instruction_format="instruction: {instruction}\n",
    yes="1",
    no="0",
    score="yes-minus-no",
    parts=("{instruction}query: {query}", "\n", "document: {document}", "\n", MXBAI_TASK),
    estimated_tokens=83,
)

# The template of each decoder family that has a yes/no reranker recipe, by the config's model_type.
TEMPLATES = {"qwen3": QWEN3_RERANKER, "gemma": BGE_GEMMA_RERANKER, "qwen2": MXBAI_RERANK_V2}


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
    return (
        base
        - estimated_text_tokens(template.instruction_text(None))
        + estimated_text_tokens(template.instruction_text(instruction))
    )


def served_texts(template: YesNoTemplate, instruction: str | None, query: str, document: str) -> tuple[str, str]:
    """The query and document as a rerank API must receive them for a server that scores a decoder reranker
    as a sequence classifier (vLLM with hf_overrides): the template split at the line that holds the document,
    the prefix and everything before it on the query, the rest and the suffix on each document, as vLLM's
    Qwen3-Reranker example formats them (query_template and document_template)."""
    pair = template.pair
    cut = pair.rfind("\n", 0, pair.index("{document}")) + 1
    values = {"instruction": template.instruction_text(instruction), "query": query}
    before = pair[:cut].format(**values)
    after = pair[cut:].format(**values, document=document)
    return template.prefix + before, after + template.suffix
