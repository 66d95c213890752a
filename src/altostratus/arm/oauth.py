"""The OAuth2 token endpoint of the local directory (client credentials for service principals, the password
grant for users), with the OpenID discovery documents MSAL reads, so
``azure.identity.ClientSecretCredential(authority=<arm endpoint>, disable_instance_discovery=True)`` works unchanged.
v1 (``resource=``) and v2 (``scope=``) forms.

Tokens are issued only for this cloud's audience, the ARM endpoint (``resource=<arm>[/]``,
``scope=<arm>/.default`` or the ``<arm>//.default`` real CLIs send); any other resource is refused as AAD refuses
an unknown one (``invalid_resource``, AADSTS500011), so no token of ours can be presented elsewhere as if it
had been issued there, and ARM refuses a token for any other audience (arm/auth.py).

The same service answers as AD FS under ``<arm>/adfs`` (the login endpoint ``/metadata/endpoints`` publishes, as
an Azure Stack Hub with AD FS does): ``/adfs/.well-known/openid-configuration`` names ``/adfs/oauth2/token``,
which takes v1's ``resource`` or, as AD FS 2019 does for MSAL, a v2 ``scope``. That is what lets ``az login
--service-principal`` work with nothing configured beyond ``az cloud register``. The password grant (``az login
-u``) needs user accounts, which the directory does not hold yet: it is refused with an OAuth2 error that says
so, which MSAL and the CLI show as it is."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.responses import Response

from altostratus.arm.auth import audience_of, cloud_audiences
from altostratus.arm.context import Platform, RequestContext
from altostratus.arm.http import json_response
from altostratus.arm.login_limits import Throttled
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import NO_VERSION, Access, Gate, Router
from altostratus.arm.user_auth import authenticate_user, user_limit_key
from altostratus.store.models import Principal


def _oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "error_description": description}, status, headers)


def _throttled(retry_after: int) -> Response:
    """As AAD answers a throttled token request: a 429 with Retry-After, the body in the OAuth2 error shape."""
    description = f"Too many sign-in attempts from this client or address. Retry after {retry_after} seconds."
    return _oauth_error(429, "temporarily_unavailable", description, {"Retry-After": str(retry_after)})


def _check_tenant(ctx: RequestContext) -> Response | None:
    tenant = ctx.params["tenant"]
    if tenant.lower() not in (ctx.services.tokens.tenant_id, "common", "organizations", "adfs"):
        return _oauth_error(400, "invalid_tenant", f"Tenant '{tenant}' not found.")
    return None


def _form(body: bytes) -> dict[str, str] | None:
    try:
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8"), strict_parsing=False).items()}
    except UnicodeDecodeError:
        return None


def throttle_gate(services: Platform, body: bytes, source: str | None) -> Response | None:
    """The 429 of a throttled attempt, answered on the event loop: a flood then costs neither a request
    thread nor a transaction. Anything else (bad input included) goes on to :func:`token`."""
    form = _form(body)
    if form and form.get("grant_type") == "password" and form.get("username") and form.get("password"):
        retry_after = services.logins.precheck(source, user_limit_key(form["username"]), form["password"])
        return _throttled(retry_after) if retry_after else None
    if not form or not form.get("client_id") or not form.get("client_secret"):
        return None
    retry_after = services.logins.precheck(source, form["client_id"].lower(), form["client_secret"])
    return _throttled(retry_after) if retry_after else None


def token(ctx: RequestContext, *, v2: bool) -> Response:
    bad = _check_tenant(ctx)
    if bad:
        return bad
    form = _form(ctx.raw_body)
    if form is None:
        return _oauth_error(400, "invalid_request", "The request body must be form-encoded UTF-8.")
    if form.get("grant_type") == "password":
        return _password_grant(ctx, form, v2=v2)
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "Only the client_credentials and password grants are supported."
        )
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        return _oauth_error(400, "invalid_request", "client_id and client_secret are required.")
    principal = ctx.db.get(Principal, client_id.lower())
    stored_hash = principal.secret_hash if principal is not None else None
    try:
        valid = ctx.services.logins.check_secret(ctx.source, client_id.lower(), stored_hash, secret)
    except Throttled as throttled:
        return _throttled(throttled.retry_after)
    if principal is None or not valid:
        return _oauth_error(401, "invalid_client", "The client id or secret is not valid.")
    return _issue_token(ctx, form, principal.client_id, principal.role, None, v2=v2)


def _password_grant(ctx: RequestContext, form: dict[str, str], *, v2: bool) -> Response:
    """A user's name and password (MSAL's resource-owner password flow, ``az login -u``); any public client id."""
    name, password = form.get("username"), form.get("password")
    if not name or not password:
        return _oauth_error(400, "invalid_request", "username and password are required for the password grant.")
    try:
        user = authenticate_user(ctx.db, ctx.services.logins, ctx.source, name, password)
    except Throttled as throttled:
        return _throttled(throttled.retry_after)
    if user is None:
        return _oauth_error(
            400,
            "invalid_grant",
            "AADSTS50126: Error validating credentials due to invalid username or password (or the user is disabled).",
        )
    return _issue_token(ctx, form, user.client_id, user.role, user.name, v2=v2)


def _issue_token(
    ctx: RequestContext, form: dict[str, str], client_id: str, role: str, user_name: str | None, *, v2: bool
) -> Response:
    resources = _requested_resources(form, v2=v2) or [ctx.base_url]
    allowed = cloud_audiences(ctx.services.settings.arm_endpoint, ctx.base_url)
    unknown = [r for r in resources if audience_of(r) not in allowed]
    if unknown:
        return _oauth_error(
            400,
            "invalid_resource",
            f"AADSTS500011: The resource principal named {unknown[0]} was not found in the tenant named "
            f"{ctx.services.tokens.tenant_id}. This can happen if the application has not been installed by the "
            f"administrator of the tenant. This cloud issues tokens for {ctx.base_url} only.",
        )
    audience = audience_of(resources[0])
    tokens = ctx.services.tokens
    issuer = tokens.issuer(ctx.base_url)
    access_token, lifetime = tokens.issue(client_id, role, audience, issuer, user_name)
    answer: dict[str, object] = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
    if user_name is not None:
        # A person's sign-in also says who signed in (OpenID Connect), as AAD and AD FS do for the password
        # grant: MSAL keeps it as the account, and without it `az login -u` takes the login for a service
        # principal's. The issuer is the authority the client used (the AD FS one for `az`).
        adfs = ctx.params.get("tenant", "").lower() == ADFS
        id_issuer = f"{ctx.base_url}/{ADFS}" if adfs else issuer
        public_client = form.get("client_id") or client_id
        answer["id_token"] = tokens.id_token(public_client, client_id, user_name, id_issuer)
    return json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# Scopes that ask for something other than a resource's access (OpenID Connect): no audience of their own.
_OIDC_SCOPES = frozenset(("openid", "profile", "offline_access", "email"))


def _requested_resources(form: dict[str, str], *, v2: bool) -> list[str]:
    """The resources a token request names: v1's ``resource``, else the ``scope`` (``<resource>/.default``, OIDC
    scopes aside) that v2 takes and AD FS takes on its v1 endpoint too (MSAL sends it there)."""
    resource = None if v2 else form.get("resource")
    if resource:
        return [resource]
    return [s for s in form.get("scope", "").split() if s.lower() not in _OIDC_SCOPES]


def openid_configuration(ctx: RequestContext) -> Response:
    bad = _check_tenant(ctx)
    if bad:
        return bad
    if ctx.params["tenant"].lower() == ADFS:
        return adfs_configuration(ctx)
    tokens = ctx.services.tokens
    base = f"{ctx.base_url}/{tokens.tenant_id}"
    return json_response(
        {
            "issuer": tokens.issuer(ctx.base_url),
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials", "password"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "local",
        }
    )


ADFS = "adfs"


def adfs_configuration(ctx: RequestContext) -> Response:
    """The AD FS discovery document (MSAL reads it for an authority ending in ``/adfs``): AD FS's own paths,
    its v1 token endpoint, the same signing keys."""
    base = f"{ctx.base_url}/{ADFS}"
    return json_response(
        {
            "issuer": base,
            "token_endpoint": f"{base}/oauth2/token",
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "jwks_uri": f"{base}/discovery/keys",
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials", "password"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "access_token_issuer": base,
        }
    )


def jwks(ctx: RequestContext) -> Response:
    return json_response({"keys": [ctx.services.tokens.public_jwk()]})


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    def add(method: str, template: str, handler: object, gate: Gate | None = None) -> None:
        router.add(method, template, handler, resource_type=NO_VERSION, access=Access.PUBLIC, gate=gate)  # type: ignore[arg-type]

    add("POST", "/{tenant}/oauth2/v2.0/token", lambda ctx: token(ctx, v2=True), throttle_gate)
    add("POST", "/{tenant}/oauth2/token", lambda ctx: token(ctx, v2=False), throttle_gate)
    add("GET", "/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    add("GET", "/{tenant}/.well-known/openid-configuration", openid_configuration)
    add("GET", "/{tenant}/discovery/v2.0/keys", jwks)
    add("GET", "/{tenant}/discovery/keys", jwks)
