"""Features for clustering postmortems: sentence vectors joined with a reduced TF-IDF of the same text.

On real postmortems the cause is told in words that MiniLM averages away ("the certificate had expired", "the
pool was exhausted"), and lexical features carry as much of it as the sentence vectors do. `HybridFeatures`
joins the two, each scaled to unit length, so that the cosine of two joined vectors is
``(1 - w) * cos(dense) + w * cos(lexical)`` with ``w = lexical_weight``.

`LexicalProjector` is latent semantic analysis: sublinear TF-IDF over word uni- and bi-grams (stop words,
numbers and redaction placeholders out), reduced by a truncated SVD and scaled to unit length. It is stored as
JSON (the vocabulary) and ``.npy`` arrays (idf, SVD components), no pickle, so a saved pattern model projects
new text exactly as at training time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ml.errors import InputError, NotFittedError
from ml.text.documents import make_analyzer

__all__ = ["HybridFeatures", "LexicalProjector"]

logger = logging.getLogger(__name__)


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _check_docs(docs: Sequence[str]) -> list[str]:
    if isinstance(docs, str) or not all(isinstance(d, str) for d in docs):
        raise InputError("docs must be a list of strings", field="docs")
    return list(docs)


class LexicalProjector:
    """TF-IDF (sublinear, uni- and bi-grams) reduced to `n_components` dimensions by a truncated SVD.

    Parameters
    ----------
    n_components:
        Dimensions kept (fewer when the corpus or its vocabulary is smaller).
    min_df, max_df:
        A term must occur in at least `min_df` documents and at most a `max_df` share of them (terms in
        most documents are the genre, not the cause).
    max_features:
        Vocabulary cap (the most frequent terms), so memory stays bounded on large corpora.
    random_state:
        Seed of the randomised SVD.
    """

    def __init__(
        self,
        n_components: int = 100,
        min_df: int = 2,
        max_df: float = 0.5,
        max_features: int = 20_000,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "max_features": self.max_features,
            "random_state": self.random_state,
        }

    def _validate(self) -> None:
        for name in ("n_components", "min_df", "max_features"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)
        if not isinstance(self.max_df, int | float) or not 0 < self.max_df <= 1:
            raise InputError(
                f"max_df must be in (0, 1], got {self.max_df!r}", field="max_df", value=self.max_df
            )

    def fit(self, docs: Sequence[str], y: None = None) -> LexicalProjector:
        """Learn the vocabulary, the idf weights and the SVD basis from `docs`."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import CountVectorizer

        self._validate()
        docs = _check_docs(docs)
        n = len(docs)
        min_df = self.min_df if n >= 4 * self.min_df else 1
        max_df = self.max_df if n >= 20 else 1.0
        vec = CountVectorizer(
            analyzer=make_analyzer((1, 2)), min_df=min_df, max_df=max_df, max_features=self.max_features
        )
        try:
            counts = vec.fit_transform(docs)
        except ValueError:  # no term survives (empty or one-word corpus)
            counts = sparse.csr_matrix((n, 0))
            vec.vocabulary_ = {}
        self.vocabulary_: dict[str, int] = {str(t): int(i) for t, i in vec.vocabulary_.items()}
        df = np.bincount(counts.indices, minlength=counts.shape[1]) if counts.shape[1] else np.zeros(0)
        self.idf_ = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        tfidf = self._weight(counts)
        d = min(self.n_components, n - 1, tfidf.shape[1] - 1)
        if d >= 1:
            svd = TruncatedSVD(n_components=d, random_state=self.random_state, algorithm="randomized")
            svd.fit(tfidf)
            self.components_ = svd.components_.astype(np.float32)
            self.explained_variance_ratio_ = float(svd.explained_variance_ratio_.sum())
        else:
            self.components_ = np.zeros((0, tfidf.shape[1]), dtype=np.float32)
            self.explained_variance_ratio_ = 0.0
        logger.info(
            "Features - TF-IDF %d terms -> LSA %d dimensions (%.0f%% of the variance)",
            len(self.vocabulary_),
            self.components_.shape[0],
            100 * self.explained_variance_ratio_,
        )
        return self

    def _weight(self, counts: sparse.spmatrix) -> sparse.csr_matrix:
        tf = sparse.csr_matrix(counts, dtype=np.float32)
        tf.data = 1.0 + np.log(tf.data)
        tf = tf @ sparse.diags(self.idf_)
        norms = np.sqrt(np.asarray(tf.multiply(tf).sum(axis=1)).ravel())
        return sparse.csr_matrix(sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ tf)

    def _weight_counts(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """:meth:`_weight` of :meth:`_counts` (sorted indices) with the diagonal products done element-wise:
        one product per stored value, so the same float32 values (checked against :meth:`_weight`), at a
        third of the cost of one query. Fitting keeps :meth:`_weight`: its vectorizer's layout feeds the SVD."""
        tf = sparse.csr_matrix(counts, dtype=np.float32)
        tf.data = (1.0 + np.log(tf.data)) * self.idf_[tf.indices]
        norms = np.sqrt(np.asarray(tf.multiply(tf).sum(axis=1)).ravel())
        inverse = (1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        tf.data = tf.data * inverse[np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))]
        return tf

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("LexicalProjector is not fitted; call fit(docs) first")

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.components_.shape[0])

    def _counts(self, docs: list[str]) -> sparse.csr_matrix:
        """Term counts of `docs` over the fitted vocabulary: what ``CountVectorizer(vocabulary=...)`` gives
        (same analyzer, sorted indices, int64), without building and validating a vectorizer on every call
        (most of the cost of classifying one API query, and scikit-learn stays off the serving path)."""
        analyzer = make_analyzer((1, 2))
        vocab = self.vocabulary_
        indptr, cols, vals = [0], [], []
        for doc in docs:
            counts: dict[int, int] = {}
            for term in analyzer(doc):
                j = vocab.get(term)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            for j in sorted(counts):
                cols.append(j)
                vals.append(counts[j])
            indptr.append(len(cols))
        return sparse.csr_matrix(
            (np.asarray(vals, dtype=np.int64), np.asarray(cols, dtype=np.int32), np.asarray(indptr)),
            shape=(len(docs), len(vocab)),
        )

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        """Unit-length LSA vectors (n, dim) of `docs` (zero rows for texts with no known term)."""
        self._check_fitted()
        docs = _check_docs(docs)
        if not docs:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.vocabulary_ or not self.dim:
            return np.zeros((len(docs), self.dim), dtype=np.float32)
        Z = np.asarray(self._weight_counts(self._counts(docs)) @ self.components_.T, dtype=np.float32)
        return _unit_rows(Z)

    def fit_transform(self, docs: Sequence[str], y: None = None) -> np.ndarray:
        return self.fit(docs).transform(docs)

    # -- persistence ------------------------------------------------------------------------------------
    def to_dir(self, path: str | Path) -> Path:
        self._check_fitted()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "idf.npy", self.idf_.astype(np.float32), allow_pickle=False)
        np.save(out / "components.npy", self.components_.astype(np.float32), allow_pickle=False)
        meta = {"params": self.get_params(), "vocabulary": self.vocabulary_}
        (out / "lexical.json").write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_dir(cls, path: str | Path) -> LexicalProjector:
        src = Path(path)
        meta_file = src / "lexical.json"
        if not meta_file.is_file():
            raise InputError(f"{src} holds no lexical projector (lexical.json missing)", field="path")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        proj = cls(**meta["params"])
        proj.vocabulary_ = {str(t): int(i) for t, i in meta["vocabulary"].items()}
        proj.idf_ = np.load(src / "idf.npy", allow_pickle=False)
        proj.components_ = np.load(src / "components.npy", allow_pickle=False)
        v = len(proj.vocabulary_)
        ids = np.fromiter(proj.vocabulary_.values(), dtype=np.int64, count=v)
        if (
            proj.idf_.shape != (v,)
            or proj.components_.ndim != 2
            or proj.components_.shape[1] != v
            or (v and (ids.min() < 0 or ids.max() >= v or np.unique(ids).size != v))
            or not np.all(np.isfinite(proj.idf_))
            or not np.all(np.isfinite(proj.components_))
        ):
            raise InputError(
                f"{src}: lexical projector arrays do not agree with its vocabulary of {v} terms",
                field="lexical",
            )
        proj.explained_variance_ratio_ = float("nan")
        return proj


class HybridFeatures:
    """Sentence vectors joined with LSA vectors of the same documents.

    Parameters
    ----------
    lexical_weight:
        Share of the lexical side in the cosine of two joined vectors (0: sentence vectors only, the
        lexical projector is then not fitted).
    lexical:
        The lexical stage (default: :class:`LexicalProjector` with its defaults).
    """

    def __init__(self, lexical_weight: float = 0.5, lexical: LexicalProjector | None = None) -> None:
        self.lexical_weight = lexical_weight
        self.lexical = lexical

    def get_params(self) -> dict[str, Any]:
        lex = self.lexical if self.lexical is not None else LexicalProjector()
        return {"lexical_weight": self.lexical_weight, "lexical": lex.get_params()}

    def fit(self, docs: Sequence[str], dense: np.ndarray) -> HybridFeatures:
        w = self.lexical_weight
        if not isinstance(w, int | float) or isinstance(w, bool) or not 0.0 <= w < 1.0:
            raise InputError(f"lexical_weight must be in [0, 1), got {w!r}", field="lexical_weight", value=w)
        docs = _check_docs(docs)
        dense = np.asarray(dense)
        if dense.ndim != 2 or dense.shape[0] != len(docs):
            raise InputError(
                f"dense must have shape ({len(docs)}, dim), got {dense.shape}",
                field="dense",
                value=dense.shape,
            )
        self.n_dense_ = int(dense.shape[1])
        if w > 0:
            params = self.lexical.get_params() if self.lexical is not None else {}
            self.lexical_: LexicalProjector | None = LexicalProjector(**params).fit(docs)
        else:
            self.lexical_ = None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_dense_"):
            raise NotFittedError("HybridFeatures is not fitted; call fit(docs, dense) first")

    def transform(self, docs: Sequence[str], dense: np.ndarray) -> np.ndarray:
        """Joined unit-length vectors: ``[sqrt(1 - w) * dense, sqrt(w) * lexical]``."""
        self._check_fitted()
        dense = _unit_rows(np.asarray(dense, dtype=np.float32))
        if dense.ndim != 2 or dense.shape[1] != self.n_dense_ or dense.shape[0] != len(docs):
            raise InputError(
                f"dense must have shape ({len(docs)}, {self.n_dense_}), got {dense.shape}",
                field="dense",
                value=dense.shape,
            )
        if self.lexical_ is None:
            return dense
        lex = self.lexical_.transform(docs)
        w = float(self.lexical_weight)
        return _unit_rows(np.hstack([np.sqrt(1.0 - w) * dense, np.sqrt(w) * lex]))

    def fit_transform(self, docs: Sequence[str], dense: np.ndarray) -> np.ndarray:
        return self.fit(docs, dense).transform(docs, dense)

    def dense_part(self, Z: np.ndarray) -> np.ndarray:
        """The sentence-vector columns of joined vectors, at unit length."""
        self._check_fitted()
        return _unit_rows(np.asarray(Z)[:, : self.n_dense_])

    # -- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "lexical_weight": self.lexical_weight,
            "n_dense": self.n_dense_,
            "lexical": self.get_params()["lexical"],
        }

    def to_dir(self, path: str | Path) -> Path:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / "hybrid.json").write_text(json.dumps(self.to_dict(), sort_keys=True) + "\n", encoding="utf-8")
        if self.lexical_ is not None:
            self.lexical_.to_dir(out / "lexical")
        return out

    @classmethod
    def from_dir(cls, path: str | Path) -> HybridFeatures:
        src = Path(path)
        meta_file = src / "hybrid.json"
        if not meta_file.is_file():
            raise InputError(f"{src} holds no hybrid features (hybrid.json missing)", field="path")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        lexical = meta.get("lexical")  # older saves lack it: the default projector's parameters
        try:
            projector = LexicalProjector(**lexical) if isinstance(lexical, dict) else None
        except TypeError as exc:
            raise InputError(
                f"{meta_file}: 'lexical' holds unknown parameters ({exc})", field="lexical"
            ) from exc
        feats = cls(lexical_weight=float(meta["lexical_weight"]), lexical=projector)
        feats.n_dense_ = int(meta["n_dense"])
        feats.lexical_ = LexicalProjector.from_dir(src / "lexical") if feats.lexical_weight > 0 else None
        return feats
