"""The complete schema: every provider's models registered on one metadata.

Lives above the providers (``store/`` imports none of them): Alembic's environment takes this metadata when it
compares models with migrations (``alembic check`` / autogenerate), and the migration test does the same.
"""

import altostratus.blobs.models  # noqa: F401 - registers the blob tables
import altostratus.compute.models  # noqa: F401 - registers the compute tables
import altostratus.deployments.models  # noqa: F401 - registers the deployment tables
import altostratus.marketplace.models  # noqa: F401 - registers the marketplace tables
import altostratus.storage.blob_models  # noqa: F401 - registers the blob data plane tables
from altostratus.store.models import Base

metadata = Base.metadata
