"""Cosine top-k over packed float32 vectors, with numpy: one matrix product over the scope's items.

Exact search; a scope of 100,000 items of 384 dimensions is a 150 MB matrix read per query, which
is where an index (pgvector, when the database has it) starts to pay.
"""

from __future__ import annotations

import numpy as np


def top_k(blobs: list[bytes], query: list[float], limit: int) -> list[tuple[int, float]]:
    """(index into blobs, cosine similarity) of the `limit` nearest, best first; ties keep insertion order."""
    if not blobs or limit <= 0:
        return []
    q = np.asarray(query, dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), q.shape[0])
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
    scores = (matrix @ q) / np.where(norms == 0, 1.0, norms)
    order = np.argsort(-scores, kind="stable")[:limit]
    return [(int(i), float(scores[i])) for i in order]
