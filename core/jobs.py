"""arq job names. Callers enqueue by these names and never import the worker."""

DELIVER_WEBHOOK = "deliver_webhook"
RELAY_OUTBOX = "relay_outbox"
RUN_EXPORT = "run_export"
RUN_BACKFILL = "run_backfill"
SWEEP_SENSOR_STATUS = "sweep_sensor_status"
SWEEP_SCHEDULED_PROFILES = "sweep_scheduled_profiles"
SWEEP_RETENTION = "sweep_retention"
