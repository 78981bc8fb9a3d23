-- Bucket leases for self-organising fleets (`bucket_leases: true`). Each jetmond host heartbeats in
-- `jetmon_fleet_host` and holds expiring leases on buckets in `jetmon_bucket_lease`. Every time here is the
-- database's own clock (NOW(3)), so clock skew between hosts cannot make two of them believe they own one
-- bucket. Rows of `jetmon_bucket_lease` are created on demand for the configured bucket range and locked
-- with SELECT ... FOR UPDATE while a host changes its share, which serialises the hosts.
--
-- Applied by `jetmond db init` only when a table is missing.

CREATE TABLE `jetmon_fleet_host` (
	`host` varchar(255) NOT NULL,
	`heartbeat_at` datetime(3) NOT NULL,
	`started_at` datetime(3) NOT NULL,
	PRIMARY KEY (`host`)
);

CREATE TABLE `jetmon_bucket_lease` (
	`bucket_no` smallint(2) unsigned NOT NULL,
	`owner` varchar(255) NULL DEFAULT NULL,
	`expires_at` datetime(3) NULL DEFAULT NULL,
	`epoch` bigint(20) unsigned NOT NULL DEFAULT 0,
	PRIMARY KEY (`bucket_no`)
);
