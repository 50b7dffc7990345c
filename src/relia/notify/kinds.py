"""Config-as-code kind of the notification domain: NotificationRules, one document per user, named by the
username (a user's rules are one ordered list, changed together; the User kind belongs to the catalog and
stays about the person and their contact methods).

```yaml
apiVersion: relia.dev/v1
kind: NotificationRules
metadata: {name: ada}
spec:
  rules:
    - {contactMethod: work-email, after: 0m}
    - {contactMethod: phone-push, after: 5m}
```
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.catalog.models import User
from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal
from relia.notify import service
from relia.notify.models import NotificationRuleSet
from relia.notify.schemas import NotificationRulesSpec


# Not a RowKind: rule sets are named by their user's username, a column of User rather than of their own table.
class NotificationRulesKind(Kind):
    kind = "NotificationRules"
    order = 61  # after the users (and their contact methods) it names
    spec_model = NotificationRulesSpec
    summary = "A user's personal notification rules: which contact method, how long after being paged."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        return [Reference("User", obj.name, ())]

    def current(self, session: Session) -> dict[str, Current]:
        rows = session.execute(
            select(NotificationRuleSet, User.username).join(User, User.id == NotificationRuleSet.user_id)
        ).all()
        return {username: Current(service.rules_spec(rule_set), rule_set.config_managed) for rule_set, username in rows}

    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None:
        managed = set(
            session.scalars(
                select(User.username)
                .join(NotificationRuleSet, NotificationRuleSet.user_id == User.id)
                .where(NotificationRuleSet.config_managed.is_(True))
            )
        )
        adopted = [obj for obj in unchanged if obj.name not in managed]
        for obj in [*creates, *updates, *adopted]:
            with blame(obj):
                service.set_rules(
                    session,
                    actor=actor,
                    username=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_rules(session, actor=actor, username=name, now=now)


register(NotificationRulesKind())
