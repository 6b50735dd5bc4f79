"""The base class of every contract model.

Every contract is strict (unknown fields are refused, so a typo or a field
that must not exist, such as a refugee's name, is caught at the boundary) and
immutable (an event is a fact; nobody edits it after the fact).

An event whose readers should ignore unknown fields instead, the first step
of adding a field to it, declares so on its data model:
`class NeedOpened(NeedDetails, extra="ignore")`. Its JSON Schema then lacks
`additionalProperties: false`, which is what the compatibility check reads.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A strict, immutable pydantic model whose fields all carry examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def example(cls) -> Self:
        """Build an instance from the first example of every field.

        Examples live on the fields (they also document the JSON Schema), so the
        model-level example is derived from them rather than written twice.
        """
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            if field.examples:
                values[name] = field.examples[0]
        return cls.model_validate(values)


class EventData(Contract):
    """The `data` of one event type; subclasses name their type and subject."""

    # The CloudEvents `type` this model is the data of, e.g.
    # "de.lotse.registry.need.opened.v1".
    event_type: ClassVar[str]
    # The data field whose value must equal the envelope `subject` (the
    # aggregate id), or None where the subject is not repeated in the data.
    subject_field: ClassVar[str | None] = None
