"""The caller and the matching service as dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lotse_matching.service import Matching
from lotse_runtime.auth import Principal, Role, requires

Volunteer = Annotated[Principal, Depends(requires(Role.VOLUNTEER))]


def matching_of(request: Request) -> Matching:
    matching: Matching = request.app.state.matching
    return matching


Service = Annotated[Matching, Depends(matching_of)]
