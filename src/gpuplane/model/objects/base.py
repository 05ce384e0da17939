"""Shared building blocks of the typed Kubernetes objects.

Every object model accepts the camelCase JSON field names Kubernetes uses and
keeps fields it does not know in ``model_extra``; the manifest loader reports
those once as warnings instead of failing, so a ``kubectl get -o yaml`` dump of
a real cluster loads whole.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from gpuplane.model.quantity import ALLOWED_FORMS, Quantity, QuantityError, parse_quantity

__all__ = [
    "KubeModel",
    "ObjectMeta",
    "QuantityValue",
    "TypedObject",
]


def _quantity(raw: Any) -> Quantity:
    try:
        return parse_quantity(raw)
    except QuantityError as error:
        raise ValueError(f"{error}; expected {ALLOWED_FORMS}") from error


QuantityValue = Annotated[
    Quantity,
    BeforeValidator(_quantity),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]}),
]


class KubeModel(BaseModel):
    """Base of every Kubernetes object part: camelCase names, unknown fields kept aside."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        arbitrary_types_allowed=True,
        serialize_by_alias=True,
    )


class ObjectMeta(KubeModel):
    """The part of ``metadata`` gpuplane reads."""

    name: str = ""
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    creation_timestamp: str | None = None
    generation: int | None = None


class TypedObject(KubeModel):
    """A top-level object: apiVersion, kind and metadata."""

    api_version: str
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def key(self) -> str:
        """``namespace/name`` for namespaced objects, ``name`` otherwise."""
        if self.metadata.namespace:
            return f"{self.metadata.namespace}/{self.metadata.name}"
        return self.metadata.name
