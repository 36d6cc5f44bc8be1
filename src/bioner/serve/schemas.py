"""Typed request and response bodies (they make the OpenAPI docs at ``/docs`` accurate)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TagRequest(BaseModel):
    """One text or a list of texts; ``model`` picks a served model by name (default: the first)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="One text to tag.")
    texts: list[str] | None = Field(None, description="Several texts, tagged together; answered in this order.")
    model: str | None = Field(None, description="Served model name (GET /v1/models).")
    min_score: float | None = Field(None, ge=0.0, le=1.0, description="Keep only spans with at least this probability.")

    @model_validator(mode="after")
    def one_of_text_or_texts(self) -> "TagRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class SpanOut(BaseModel):
    start: int = Field(description="Character offset of the first character (inclusive).")
    end: int = Field(description="Character offset after the last character (exclusive).")
    label: str
    text: str = Field(description="text[start:end]")
    score: float | None = Field(None, description="The model's confidence in the span, where it gives one.")


class Record(BaseModel):
    """The same shape as a line of `bioner predict` JSONL output."""

    id: str
    text: str
    spans: list[SpanOut]


class TagResponse(BaseModel):
    model: str
    results: list[Record]


class ModelCard(BaseModel):
    name: str
    kind: str
    labels: list[str]
    entity_types: list[str]
    parameters: int
    backend: str
    precision: str
    test: dict[str, Any] | None = Field(None, description="The run's test metrics (overall and by entity length).")


class ModelsResponse(BaseModel):
    models: list[ModelCard]


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
