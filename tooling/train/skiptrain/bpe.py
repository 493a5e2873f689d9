"""A byte-level BPE tokenizer trained from text, written as a Hugging Face tokenizer.json.

The format is GPT-2's (ByteLevel pre-tokenizer and decoder, BPE model with merges), which
@huggingface/tokenizers and transformers load as they are. Words are split with the GPT-2
pattern; the text here is ASCII, so its letter and digit classes are the ASCII ones.
"""
from __future__ import annotations

import collections
import re

# GPT-2's pre-tokenization pattern with \p{L} and \p{N} narrowed to ASCII: the training text is ASCII.
WORD = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode() -> list[str]:
    """GPT-2's byte-to-character table: every byte as a printable character."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = [], 0
    for b in range(256):
        if b in printable:
            table.append(chr(b))
        else:
            table.append(chr(256 + extra))
            extra += 1
    return table


def train(text: str, vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary (id 0 is the end-of-text token, then the bytes the text uses) and merges by rank."""
    if not text.isascii():
        raise ValueError("bpe.train: the pre-tokenizer here handles ASCII text only")
    table = bytes_to_unicode()
    counts = collections.Counter(WORD.findall(text))
    words = {tuple(table[b] for b in w.encode()): n for w, n in counts.items()}
    vocab = {END_OF_TEXT: 0}
    for symbol in sorted({s for w in words for s in w}):
        vocab[symbol] = len(vocab)
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size:
        pairs: collections.Counter = collections.Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda item: (item[1], item[0]))[0]
        merged = best[0] + best[1]
        merges.append(best)
        vocab[merged] = len(vocab)
        words = {_merge(word, best, merged): n for word, n in words.items()}
    return vocab, merges


def _merge(word: tuple[str, ...], pair: tuple[str, str], merged: str) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def tokenizer_json(vocab: dict[str, int], merges: list[tuple[str, str]]) -> dict:
    end = {"id": 0, "content": END_OF_TEXT, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [end],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }


def tokenizer_config() -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": END_OF_TEXT,
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 512,
    }
