"""The portal's pages, one module per area; ``access`` holds what every route depends on."""

from fastapi import APIRouter

from lotse_portal.api import (
    console,
    engagements,
    guidance,
    maps,
    my_data,
    needs,
    office_needs,
    organisation,
    profile,
    proposals,
    signin,
    start,
    statistics,
)

router = APIRouter()
for module in (
    start,
    signin,
    profile,
    maps,
    proposals,
    needs,
    engagements,
    my_data,
    organisation,
    console,
    office_needs,
    guidance,
    statistics,
):
    router.include_router(module.router)
