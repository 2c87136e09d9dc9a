"""English stemming for retrieval and names: the Snowball English (Porter 2) stemmer, PyStemmer-backed.

One stemmer for the whole library, so that BM25, keyword de-duplication and names agree that "retries",
"retried" and "retry" are one word. Tokens with a digit or of three letters or fewer are kept as they are
(ids, versions and short acronyms are not words to stem).
"""

from __future__ import annotations

import functools

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case ``word`` (short or non-alphabetic tokens unchanged)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    return str(_STEMMER.stemWord(word))
