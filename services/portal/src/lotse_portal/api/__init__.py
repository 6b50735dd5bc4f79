"""The portal's pages, one module per area; ``access`` holds what every route depends on."""

from fastapi import APIRouter

from lotse_portal.api import (
    audit,
    console,
    engagements,
    guidance,
    hours,
    maps,
    my_data,
    needs,
    office_need_form,
    office_needs,
    office_questions,
    office_volunteers,
    organisation,
    profile,
    proposals,
    questions,
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
    office_need_form,  # before office_needs: /console/needs/new is not a need's id
    office_needs,
    office_volunteers,
    guidance,
    statistics,
    hours,
    questions,
    office_questions,
    audit,
):
    router.include_router(module.router)
