"""Tagged unions of the configuration: one key (the tag) picks the model of a table.

::

    NotifierConfig = tagged_union("type", (WebhookConfig, SlackConfig, ...), "a notifier type")

Each member declares its tag as a ``Literal`` of the tag field (``type: Literal["slack"]``),
so the table of models is the one list of members. :class:`TaggedUnion` keeps that table
for the loader (:mod:`prober.config.loader`), which words every union's errors the same
way, from the table:

- a wrong, mistyped or missing tag: ``notifiers[0].type: "email" is not a notifier type
  (webhook, slack, teams, apprise)``; ``notifiers[0].type: missing required field``;
- the tag never appears in a field path (``notifiers[0].url``, not
  ``notifiers[0].slack.url``);
- a key of another member: ``urls applies to type = "apprise" only, not to type = "slack"``.

This module imports nothing of the project: the notifiers' own modules build their union
with it, and they may not import the configuration package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args

from pydantic import BaseModel, Discriminator, Tag

UNION_TAG_ERROR = "union_tag"
"""Prefix of the pydantic error type of a wrong, mistyped or missing tag
(:func:`union_of_error` tells which union)."""


@dataclass(frozen=True, eq=False, slots=True)
class TaggedUnion:
    """A union's tag field, its members by tag, and how its messages name the tag."""

    field: str
    """The key whose value picks the member (``type``, ``api``, ``profile``…)."""
    members: Mapping[str, type[BaseModel]]
    """Tag → model, in the order the choices are listed."""
    noun: str
    """What a tag is, with its article: ``a notifier type``."""
    default: str | None = None
    """The tag of a table that does not set the field (None: the field is required)."""

    @property
    def choices(self) -> str:
        """The tags, for messages: ``webhook, slack, teams, apprise``."""
        return ", ".join(self.members)

    def tag_of(self, data: Any) -> str | None:
        """The member's tag for ``data`` (a table or a model); None when it has none of them."""
        if isinstance(data, BaseModel):
            value = getattr(data, self.field, None)
        elif isinstance(data, dict):
            value = data.get(self.field, self.default)
        else:
            return None
        return value if isinstance(value, str) and value in self.members else None

    def keys_of(self, tag: str) -> frozenset[str]:
        """The keys the member ``tag`` accepts (aliases where a field has one)."""
        fields = self.members[tag].model_fields
        return frozenset(info.alias or name for name, info in fields.items())

    def tags_accepting(self, key: str) -> list[str]:
        """The members (tags) that accept ``key``, in table order."""
        return [tag for tag in self.members if key in self.keys_of(tag)]


UNIONS: list[TaggedUnion] = []
"""Every union built by :func:`tagged_union` (the loader finds their tags in field paths)."""


def tagged_union(field: str, models: Sequence[type[BaseModel]], noun: str, default: str | None = None) -> Any:
    """The annotated, discriminated union of ``models``, picked by the key ``field``.

    Each model's tag is the single value of its ``Literal`` annotation of ``field``.
    ``default`` is the tag of a table without ``field`` (the member must then give the
    field that default too); without it, the field is required.
    """
    members: dict[str, type[BaseModel]] = {}
    for model in models:
        values = get_args(model.model_fields[field].annotation)
        if len(values) != 1 or not isinstance(values[0], str):
            raise TypeError(f"{model.__name__}.{field} must be a Literal of one string (the member's tag)")
        members[values[0]] = model
    if default is not None and default not in members:
        raise ValueError(f"default tag {default!r} is not one of {', '.join(members)}")
    union = TaggedUnion(field, members, noun, default)
    UNIONS.append(union)
    # The error names its union by its place in UNIONS: a context would make the
    # annotation unhashable, which pydantic's handling of `X | None` does not allow.
    return Annotated[
        Union[tuple(Annotated[model, Tag(tag)] for tag, model in members.items())],  # noqa: UP007 - from a tuple: X | Y cannot
        Discriminator(
            union.tag_of,
            custom_error_type=f"{UNION_TAG_ERROR}:{len(UNIONS) - 1}",
            custom_error_message=f"{field} must be " + " or ".join(f'"{tag}"' for tag in members),
        ),
    ]


def union_of_tag(node: object, part: object) -> TaggedUnion | None:
    """The union whose tag ``part`` is, for the table ``node`` of a field path (pydantic
    puts the member's tag in error locations, where it is not a key); None otherwise."""
    if not isinstance(node, dict) or not isinstance(part, str) or part in node:
        return None
    return next((union for union in UNIONS if part in union.members and union.tag_of(node) == part), None)


def union_of_error(error_type: str) -> TaggedUnion | None:
    """The union a pydantic error of type ``error_type`` says no member was picked of."""
    prefix, _, index = error_type.partition(":")
    if prefix != UNION_TAG_ERROR or not index.isdigit() or int(index) >= len(UNIONS):
        return None
    return UNIONS[int(index)]
