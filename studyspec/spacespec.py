"""`search_space:` of a study: a registered family by name, and its options, which the
family's own options model validates (searchspaces.registry)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from studyspec.fields import Strict, error_at, located


class SearchSpaceSpec(Strict):
    name: str
    options: dict[str, Any] = {}  # validated by the space's own options model
    # a module to import first, which registers `name` (a family of your own, kept outside
    # this repository: docs/adding-a-search-space.md); imported again inside every trial
    module: str | None = Field(None, pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

    @model_validator(mode="after")
    def _known_space_and_options(self) -> SearchSpaceSpec:
        import importlib

        from pydantic import ValidationError

        from searchspaces.registry import get_space

        if self.module is not None:
            try:
                importlib.import_module(self.module)
            except ImportError as error:
                raise error_at("SearchSpaceSpec", "module", f"cannot import {self.module!r} "
                               f"({error})") from None
        try:
            space = get_space(self.name)
        except KeyError as error:
            raise ValueError(error.args[0]) from None
        try:
            space.parse_options(self.options)
        except ValidationError as error:
            key, message, _ = located(error)
            raise error_at("SearchSpaceSpec", f"options.{key}".rstrip("."), message) from None
        return self

    def resolved_options(self) -> dict[str, Any]:
        from searchspaces.registry import get_space

        return get_space(self.name).parse_options(self.options).model_dump(mode="json")
