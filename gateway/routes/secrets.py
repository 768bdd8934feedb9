"""Keptn's secret-service under `/api/secrets/v1`: create, list, update and delete secrets.

Values are write-only: requests carry them in, no answer, log line or event carries them out (the
list shows names, scopes and keys). Where they are kept is `tidegate.streams.secrets` (Kubernetes
Secrets in a cluster, else a file only Tidegate's user can read); connectors resolve `secretRef`
from there. The store's calls block (file lock, Kubernetes client), so the routes run in FastAPI's
thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from tidegate.streams.secrets import DEFAULT_SCOPE, SecretError, SecretExists, SecretInvalid, SecretNotFound

from ..auth import require_token
from ..context import Gateway, gateway
from ..errors import ApiError

router = APIRouter(prefix="/api/secrets/v1", tags=["secrets"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="lower-case letters, digits and dashes, e.g. slack-webhook")
    scope: str = Field(default="", description=f"default {DEFAULT_SCOPE}")
    data: dict[str, str] = Field(description="key -> value; values are stored, never returned")


class SecretOut(BaseModel):
    """A secret as answered: name, scope and keys, never values."""

    name: str
    scope: str
    keys: list[str] = Field(default_factory=list)


class SecretsOut(BaseModel):
    Secrets: list[SecretOut]  # Keptn's field name (capital S), which its CLI reads


class ScopesOut(BaseModel):
    scopes: list[str]


def _api_error(error: SecretError) -> ApiError:
    if isinstance(error, SecretInvalid):
        return ApiError(400, str(error))
    if isinstance(error, SecretNotFound):
        return ApiError(404, str(error))
    if isinstance(error, SecretExists):
        return ApiError(409, str(error))
    return ApiError(500, f"the secret store failed: {error}")


@router.post("/secret", status_code=status.HTTP_201_CREATED, response_model=SecretOut, summary="Create a secret")
def create_secret(body: SecretIn, gw: Gw) -> SecretOut:
    scope = body.scope or DEFAULT_SCOPE
    try:
        gw.secrets.create(body.name, scope, body.data)
    except SecretError as error:
        raise _api_error(error) from None
    return SecretOut(name=body.name, scope=scope, keys=sorted(body.data))


@router.put("/secret", response_model=SecretOut, summary="Replace a secret's data")
def update_secret(body: SecretIn, gw: Gw) -> SecretOut:
    scope = body.scope or DEFAULT_SCOPE
    try:
        gw.secrets.update(body.name, scope, body.data)
    except SecretError as error:
        raise _api_error(error) from None
    return SecretOut(name=body.name, scope=scope, keys=sorted(body.data))


@router.delete("/secret", response_model=SecretOut, summary="Delete a secret")
def delete_secret(gw: Gw, name: Annotated[str, Query()], scope: Annotated[str, Query()] = DEFAULT_SCOPE) -> SecretOut:
    try:
        gw.secrets.delete(name, scope or DEFAULT_SCOPE)
    except SecretError as error:
        raise _api_error(error) from None
    return SecretOut(name=name, scope=scope or DEFAULT_SCOPE)


@router.get("/secret", response_model=SecretsOut, summary="Secrets: names, scopes and keys (never values)")
def list_secrets(gw: Gw, name: str | None = None, scope: str | None = None) -> SecretsOut:
    try:
        found = gw.secrets.list(name or None, scope or None)
    except SecretError as error:
        raise _api_error(error) from None
    return SecretsOut(Secrets=[SecretOut(name=s.name, scope=s.scope, keys=list(s.keys)) for s in found])


@router.get("/scope", response_model=ScopesOut, summary="Scopes in use (and Keptn's default)")
def list_scopes(gw: Gw) -> ScopesOut:
    try:
        found = gw.secrets.list()
    except SecretError as error:
        raise _api_error(error) from None
    return ScopesOut(scopes=sorted({DEFAULT_SCOPE, *(s.scope for s in found)}))
