"""Imports every domain's tables so Base.metadata is complete (Alembic, tests, create_all)."""

from relia.catalog import models as catalog_models  # noqa: F401
from relia.core import models as core_models  # noqa: F401
from relia.slo import models as slo_models  # noqa: F401
