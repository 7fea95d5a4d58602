"""Recall quality with the local embedding model (all-MiniLM-L6-v2, the memory extra): over a fixed
corpus of 30 short facts, 24 paraphrased questions must find their fact first at least 80% of the time.

Runs whenever the extra is installed (scripts/test.sh installs it); skipped, saying so, only when the
torch / sentence-transformers / model packages are not importable.
"""

from __future__ import annotations

import pytest

from agents.recall import InMemoryBackend, LongTermMemory, Scope
from agents.recall.embedders import LOCAL_PACKAGES, MEMORY_EXTRA_HINT, HashEmbedder, LocalEmbedder, local_model_available

pytestmark = pytest.mark.memory_model

if not local_model_available():
    pytest.skip(
        f"the local embedding model is not importable (needs {', '.join(LOCAL_PACKAGES)}): {MEMORY_EXTRA_HINT}",
        allow_module_level=True,
    )

FACTS = [
    "Acme Corp's tenant id is t-42.",
    "The staging database password is rotated every Monday morning.",
    "Invoices are emailed to customers on the first day of each month.",
    "Production deploys need approval from two engineers.",
    "The office in Lyon closes at 6 pm on Fridays.",
    "Maria is the on-call engineer this week.",
    "The API rate limit is 100 requests per minute per key.",
    "Backups of the main database are kept for 30 days.",
    "The company logo uses the colour teal.",
    "Customer support answers tickets within 4 hours.",
    "The quarterly planning meeting is on the second Tuesday of March.",
    "Our cloud provider region is eu-west-1 in Ireland.",
    "New employees receive a laptop on their first day.",
    "The mobile app is written in Kotlin and Swift.",
    "Refunds over 500 euros need the finance director's signature.",
    "The coffee machine on the third floor is broken.",
    "Passwords must be at least 14 characters long.",
    "The marketing budget for this year is 2 million euros.",
    "Globex signed a three-year contract in January.",
    "The test suite takes about 12 minutes to run.",
    "Parking spaces are reserved for visitors near the entrance.",
    "The CEO's name is Jonas Berg.",
    "Our main competitor lowered its prices last quarter.",
    "The wifi password for guests is printed at reception.",
    "The data warehouse is refreshed every night at 2 am.",
    "Holiday requests must be submitted two weeks in advance.",
    "The printer on the second floor only prints in black and white.",
    "The sales team's target is 40 new customers per quarter.",
    "Server logs are shipped to Elasticsearch.",
    "The annual company retreat takes place in the mountains in June.",
]

# (question, index of the fact that answers it): paraphrases, with few of the fact's words.
QUERIES = [
    ("What identifier does the Acme tenant have?", 0),
    ("How often do we change the staging DB credentials?", 1),
    ("When do clients get their bills?", 2),
    ("How many people must sign off a release to prod?", 3),
    ("Who is on call right now?", 5),
    ("How many API calls can a key make each minute?", 6),
    ("How long are database backups retained?", 7),
    ("What colour is our brand mark?", 8),
    ("How fast does the helpdesk respond?", 9),
    ("Which AWS region do we run in?", 11),
    ("What do new hires get on day one?", 12),
    ("Which languages is the phone app built with?", 13),
    ("Who has to approve a large reimbursement?", 14),
    ("Where can't I get a coffee?", 15),
    ("What is the minimum password length?", 16),
    ("How much money does marketing have this year?", 17),
    ("Which customer agreed to a multi-year deal?", 18),
    ("How long does running the tests take?", 19),
    ("Who runs the company?", 21),
    ("How do visitors get on the wireless network?", 23),
    ("When is the analytics warehouse updated?", 24),
    ("How early must I ask for vacation?", 25),
    ("Can the printer do colour?", 26),
    ("How many customers should sales win each quarter?", 27),
    ("Where do our logs end up?", 28),
    ("Where is the yearly offsite held?", 29),
]


def accuracy(memory: LongTermMemory) -> float:
    scope = Scope("profile", "quality")
    for fact in FACTS:
        memory.remember(scope, fact)
    right = 0
    for question, expected in QUERIES:
        (top,) = memory.recall([scope], question, limit=1)
        right += top.record.text == FACTS[expected]
    return right / len(QUERIES)


def test_the_local_model_finds_the_right_fact_first_at_least_80_percent_of_the_time() -> None:
    assert len(FACTS) >= 25 and len(QUERIES) >= 20
    local = accuracy(LongTermMemory(InMemoryBackend(), LocalEmbedder()))
    baseline = accuracy(LongTermMemory(InMemoryBackend(), HashEmbedder()))
    print(f"top-1 accuracy: local model {local:.0%}, hashing embedder {baseline:.0%} ({len(QUERIES)} queries)")
    assert local >= 0.8, f"top-1 accuracy {local:.0%} (hashing embedder: {baseline:.0%})"
