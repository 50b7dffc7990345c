"""Alerting: intake adapters (Alertmanager, Grafana, PagerDuty Events v2, a generic webhook, Relia's own SLO
burn alerts), alerts and alert groups, routing rules and silences."""
