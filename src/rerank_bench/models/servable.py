"""A model folder that a serving stack on older libraries can load (infinity pins transformers<=4.57).

transformers 5 writes `"tokenizer_class": "TokenizersBackend"` into tokenizer_config.json, a class 4.x does
not know, so a folder saved here cannot be served by infinity as it is. This writes a copy whose tokenizer
is the generic `PreTrainedTokenizerFast` (read from tokenizer.json by every 4.x and 5.x release) and whose
weights are fp32 (the twin's fp16 cache would otherwise be served at fp16 on CPU), so the server and the
in-process sweep run the same model at the same precision.

    rerank-bench serve-folder minilm-l6 /tmp/minilm-serve
"""

from __future__ import annotations

import json
from pathlib import Path

from rerank_bench.errors import ModelError


def servable_folder(spec: str, out: Path) -> Path:
    """Write `spec` (a catalog alias, served as its architecture twin, or a local folder) to `out`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerank_bench.catalog import find_model
    from rerank_bench.models.twin import TWIN_MARKER, build_twin

    entry = find_model(spec)
    if entry is not None:
        source, _ = build_twin(entry)
    elif Path(spec).is_dir():
        source = Path(spec)
    else:
        raise ModelError(
            f"{spec} is neither a catalog alias nor a local folder",
            "`rerank-bench will-it-run` with no model lists every catalog alias",
        )
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out} exists and is not empty; it is left as it is", "choose a new folder")
    model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)  # a transformers 5 key
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    marker = source / TWIN_MARKER
    if marker.exists():  # keep saying these are random weights
        (out / TWIN_MARKER).write_text(marker.read_text())
    return out
