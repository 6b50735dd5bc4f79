"""Which channels Lotse can deliver to a person here: forms offer only these (any signed-in caller)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from lotse_contracts.events.values import Channel
from lotse_runtime.auth import Principal, authenticated

router = APIRouter()


@router.get(
    "/channels",
    tags=["channels"],
    summary="The channels a person can choose here (SMS only with an SMS gateway)",
)
async def channels(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> dict[str, Any]:
    offered = [Channel.EMAIL, Channel.IN_APP]
    if request.app.state.settings.sms_gateway:
        offered.append(Channel.SMS)
    return {"channels": [channel.value for channel in offered]}
