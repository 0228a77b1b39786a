"""Tiny random causal LMs (GPT-2 and Llama) and a word-level tokenizer, built locally for tests and recipes."""

from __future__ import annotations

import json
import random
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<s> assistant : {% endif %}")
WORDS = tuple("the a cat dog bird sees likes eats runs sleeps big small red blue green fast slow and or "
              "what does who is where here there yes no one two three four five user assistant : ?".split())


def make_tokenizer(out_dir: str | Path, words: tuple[str, ...] = WORDS):
    """A whitespace word-level PreTrainedTokenizerFast with <pad> <s> </s> <unk> and a chat template, saved."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def make_tiny_lm(out_dir: str | Path, family: str = "gpt2", layers: int = 4, hidden: int = 32, heads: int = 2,
                 seed: int = 0, words: tuple[str, ...] = WORDS) -> Path:
    """A random `family` (gpt2 | llama) causal LM with the word-level tokenizer, saved with save_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    out = Path(out_dir)
    tokenizer = make_tokenizer(out, words)
    common = {"vocab_size": len(tokenizer), "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if family == "gpt2":
        config = GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_positions=128, **common)
    elif family == "llama":
        config = LlamaConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                             num_key_value_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=128,
                             **common)
    else:
        raise ValueError(f"family {family!r} is not gpt2 or llama")
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


def write_toy_data(path: str | Path, n: int, seed: int = 0, kind: str = "prompt_response", rule: bool = False) -> Path:
    """`n` JSONL rows of a toy question/answer language: prompt_response, messages or text.

    With `rule` the answer follows from the question (the verb from the animal, the object from the
    colour), so a model can learn it; otherwise verb and object are random.
    """
    rng = random.Random(seed)
    animals, verbs, colours = ["cat", "dog", "bird"], ["sees", "likes", "eats"], ["red", "blue", "green"]
    rows = []
    for _ in range(n):
        a, b, v, c = rng.choice(animals), rng.choice(animals), rng.choice(verbs), rng.choice(colours)
        if rule:
            v, b = verbs[animals.index(a)], animals[colours.index(c)]
        prompt, response = f"what does the {c} {a} ?", f"the {c} {a} {v} the {b}"
        if kind == "messages":
            rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]})
        elif kind == "text":
            rows.append({"text": f"{prompt} {response}"})
        else:
            rows.append({"prompt": prompt, "response": response})
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return Path(path)
