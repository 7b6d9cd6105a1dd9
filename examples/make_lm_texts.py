"""Generate examples/data/lm_texts.csv: three language models scored on the same 60 texts.

Run ``python examples/make_lm_texts.py`` (fixed seed: the file is the same on
every machine). Each row is one text with its ``text_id``, ``text``,
``n_words``, ``domain`` (web, code, news) and ``language`` (en, fr), and each model's
natural log-probability of every token of it (a JSON array per cell):

- ``base`` and ``tuned`` share a tokenizer (about 4 bytes per token); ``tuned``
  is a little better everywhere, most on code;
- ``other`` has another tokenizer (about 2.5 bytes per token, so more, cheaper
  tokens): its per-token perplexity looks better than the others', yet per byte
  it sits between them. ``xebench lm`` ranks by bits per byte and warns.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SEED = 16
N_TEXTS = 60
OUT = Path(__file__).resolve().parent / "data" / "lm_texts.csv"
WORDS = {
    "en": ["the", "model", "reads", "text", "and", "data", "of", "a", "token", "byte"],
    "fr": ["le", "modèle", "lit", "texte", "et", "données", "équipe", "à", "été", "où"],
}
# Nats per byte by model and domain: the difficulty each model sees.
NATS_PER_BYTE = {
    "base": {"web": 0.80, "code": 0.70, "news": 0.75},
    "tuned": {"web": 0.76, "code": 0.58, "news": 0.72},
    "other": {"web": 0.78, "code": 0.66, "news": 0.74},
}
BYTES_PER_TOKEN = {"base": 4.0, "tuned": 4.0, "other": 2.5}


def _split(rng: np.random.Generator, n_bytes: int, per_token: float) -> int:
    return max(1, round(n_bytes / per_token + rng.normal(0, 0.5)))


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = []
    for i in range(N_TEXTS):
        domain = ["web", "code", "news"][i % 3]
        language = "en" if rng.random() < 0.6 else "fr"
        words = rng.choice(WORDS[language], size=int(rng.integers(6, 30)))
        text = " ".join(words)
        n_bytes = len(text.encode("utf-8"))
        difficulty = rng.lognormal(0.0, 0.25)  # a hard text is hard for every model
        row = {"text_id": f"t{i + 1:03d}", "text": text, "n_words": len(words)}
        row |= {"domain": domain, "language": language}
        tokens_shared = _split(rng, n_bytes, BYTES_PER_TOKEN["base"])
        for model, rates in NATS_PER_BYTE.items():
            n_tokens = tokens_shared if model != "other" else _split(rng, n_bytes, 2.5)
            total = rates[domain] * difficulty * n_bytes * rng.lognormal(0.0, 0.05)
            shares = rng.dirichlet(np.full(n_tokens, 2.0))
            row[model] = json.dumps([round(-float(v), 4) for v in total * shares])
        rows.append(row)
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        fields = ["text_id", "domain", "language", "text", "n_words", "base", "tuned", "other"]
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT} ({len(rows)} texts)")


if __name__ == "__main__":
    main()
