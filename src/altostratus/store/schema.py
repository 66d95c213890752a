"""The complete schema: every provider's models registered on one metadata (for Alembic and checks)."""

import altostratus.compute.models  # noqa: F401 - registers the compute tables
import altostratus.compute.quotas  # noqa: F401 - registers the quota table
import altostratus.marketplace.models  # noqa: F401 - registers the marketplace tables
import altostratus.resources.deployment_models  # noqa: F401 - registers the deployment tables
from altostratus.store.models import Base

metadata = Base.metadata
