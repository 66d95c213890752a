"""What `alto vmss create` adds to a refusal so the user can fix the command: the naming rule of scale sets,
and the images this cloud has (the closest to the one asked for first), read as the tenant sees them
(the `az vm image list` routes), since the tenant cannot list the operator's catalogue."""

from __future__ import annotations

from altostratus.cli.client import ApiClient, ApiError

COMPUTE_API = "2020-06-01"
SHOWN = 8  # more images than this: the closest ones, and how many others exist
NAME_RULE = "Scale set names are 1-64 characters: letters, digits, '-', '_' and '.'."


def available_images(api: ApiClient, location: str) -> list[str]:
    """Every ``publisher:offer:sku:version`` the tenant can deploy in ``location``."""
    base = f"/subscriptions/{api.subscription_id}/providers/Microsoft.Compute/locations/{location}/publishers"

    def names(path: str) -> list[str]:
        return [str(item["name"]) for item in api.request("GET", path, COMPUTE_API).json()]

    urns = []
    for pub in names(base):
        for offer in names(f"{base}/{pub}/artifacttypes/vmimage/offers"):
            for sku in names(f"{base}/{pub}/artifacttypes/vmimage/offers/{offer}/skus"):
                versions = names(f"{base}/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions")
                urns += [f"{pub}:{offer}:{sku}:{v}" for v in versions]
    return urns


def closest_first(wanted: str, urns: list[str]) -> list[str]:
    """``urns`` with the ones most like ``wanted`` (case aside) first."""
    by_key = {u.lower(): u for u in urns}
    import difflib  # here: only a refused create needs it

    close = difflib.get_close_matches(wanted.lower(), list(by_key), n=len(urns), cutoff=0.0)
    return [by_key[k] for k in close]


def image_hint(api: ApiClient, wanted: str, location: str) -> str:
    """One sentence naming the images that exist, closest match first ('' if even listing them fails)."""
    try:
        urns = available_images(api, location)
    except ApiError:
        return ""
    if not urns:
        return f"No image is available in '{location}': an operator adds them with `alto marketplace download`."
    ranked = closest_first(wanted, urns)
    shown = ", ".join(ranked[:SHOWN]) + (f" and {len(ranked) - SHOWN} more" if len(ranked) > SHOWN else "")
    return f"Closest available image: {ranked[0]} (version 'latest' works too). Available: {shown}."


def create_hint(exc: ApiError, api: ApiClient, wanted_image: str, location: str) -> str:
    """What would be valid, for the refusals a user can fix by changing the command ('' for the others)."""
    if exc.code == "PlatformImageNotFound" or exc.target == "imageReference":
        return image_hint(api, wanted_image, location)
    if exc.target == "vmScaleSetName":
        return NAME_RULE
    return ""
