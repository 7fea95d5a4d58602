"""The LLM endpoints' shared circuit breakers."""

from __future__ import annotations

from django.db import models


class EndpointBreaker(models.Model):
    """The circuit breaker of one LLM endpoint and model, shared by every worker (agents/llm/breaker.py).

    Operators read it in the admin: an open breaker means tasks that need this endpoint are
    rescheduled for after `opened_at` + the cool-down instead of calling it.
    """

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    key = models.CharField(max_length=300, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(default=0)  # consecutive transient failures
    opened_at = models.DateTimeField(null=True, blank=True)
    trial_started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=["closed", "open", "half_open"]), name="breaker_state_valid")
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.state}"
