-- Sensors and conversion profiles (issue 5): rules the database enforces itself.

ALTER TABLE sensors
    ADD CONSTRAINT sensors_reported_status_check
        CHECK (reported_status IN ('online', 'delayed', 'offline', 'never_seen')),
    ADD CONSTRAINT sensors_rate_limits_positive
        CHECK ((rate_points_per_s IS NULL OR rate_points_per_s > 0)
               AND (burst_points IS NULL OR burst_points > 0)),
    ADD CONSTRAINT sensors_previous_token_pair
        CHECK ((previous_token_hash IS NULL) = (previous_token_expires_at IS NULL));

-- Windows are [valid_from, valid_to); an active profile has a start and no end, a scheduled
-- one has a start.
ALTER TABLE conversion_profiles
    ADD CONSTRAINT conversion_profiles_window_order
        CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_to >= valid_from),
    ADD CONSTRAINT conversion_profiles_active_window
        CHECK (status <> 'active' OR (valid_from IS NOT NULL AND valid_to IS NULL)),
    ADD CONSTRAINT conversion_profiles_scheduled_start
        CHECK (status <> 'scheduled' OR valid_from IS NOT NULL);

-- The worker's look-up of scheduled profiles that are due.
CREATE INDEX conversion_profiles_due_idx ON conversion_profiles (valid_from)
    WHERE status = 'scheduled';
