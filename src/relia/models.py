"""Imports every domain's tables so Base.metadata is complete (Alembic, tests, create_all)."""

from relia.alerting import models as alerting_models  # noqa: F401
from relia.catalog import models as catalog_models  # noqa: F401
from relia.core import models as core_models  # noqa: F401
from relia.deploys import models as deploys_models  # noqa: F401
from relia.escalation import models as escalation_models  # noqa: F401
from relia.notify import models as notify_models  # noqa: F401
from relia.oncall import models as oncall_models  # noqa: F401
from relia.policy import models as policy_models  # noqa: F401
from relia.slo import models as slo_models  # noqa: F401
