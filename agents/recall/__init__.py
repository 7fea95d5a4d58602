"""Long-term memory: items of text an agent remembers, scoped to its task or to its profile, and
recalled by meaning (cosine similarity of embeddings). Not to be confused with the in-memory Store
(agents/inmemory_store.py); its ORM backend is tasks_app/recall_store.py.

records    MemoryRecord, MemoryHit, the MemoryBackend protocol and the in-memory backend
embedders  the Embedder seam: OpenAI embeddings, the local all-MiniLM-L6-v2 model, a hashing fallback
search     cosine top-k over packed float32 vectors (numpy)
long_term  LongTermMemory: one backend plus one embedder, what the remember/recall tools use

Items embedded by different models never meet: every item records its embedder's name and
dimension, and a search only looks at items with the query's.
"""

from agents.recall.long_term import LongTermMemory
from agents.recall.records import InMemoryBackend, MemoryBackend, MemoryHit, MemoryRecord, Scope

__all__ = ["InMemoryBackend", "LongTermMemory", "MemoryBackend", "MemoryHit", "MemoryRecord", "Scope"]
