"""/api/me: who the request's token belongs to (the dashboard's sign-in page checks a token with it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.auth import require_user
from store.users import Principal

router = APIRouter(tags=["auth"])


class MeOut(BaseModel):
    """The user a token belongs to."""

    id: int = Field(description="User id.")
    name: str = Field(description="User name.")
    is_admin: bool = Field(description="Whether the user sees and acts on every user's jobs.")


@router.get("/api/me", response_model=MeOut, summary="The user of this token")
async def me(user: Principal = Depends(require_user)) -> MeOut:
    return MeOut(id=user.id, name=user.name, is_admin=user.is_admin)
