"""Incident text: redaction, documents, template sentences, names to mask, stemming, and MiniLM embeddings."""

from ml._exports import lazy_exports

_NAMES = {
    "redact": "redaction",
    "redact_incident": "redaction",
    "strip_html": "documents",
    "DocumentBuilder": "documents",
    "STOP_WORDS": "documents",
    "tokenize": "documents",
    "make_analyzer": "documents",
    "DEFAULT_MODEL_ID": "embedding",
    "default_model_path": "embedding",
    "EmbeddingCache": "embedding_cache",
    "Embedder": "embedding",
    "EmbeddingBatcher": "embedding_batches",
    "BoilerplateFilter": "boilerplate",
    "split_sentences": "boilerplate",
    "EntityMasker": "entities",
    "stem": "stemming",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
