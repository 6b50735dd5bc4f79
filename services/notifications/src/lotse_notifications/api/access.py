"""The caller and the store as dependencies: coordinators manage their tenant's settings,
volunteers read their own inbox. The tenant always comes from the token, never from the path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lotse_notifications.store import Store
from lotse_runtime.auth import Principal, Role, requires
from lotse_runtime.problems import problem_responses

NOT_FOUND = problem_responses(404)
Coordinator = Annotated[Principal, Depends(requires(Role.COORDINATOR))]
Volunteer = Annotated[Principal, Depends(requires(Role.VOLUNTEER))]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]
