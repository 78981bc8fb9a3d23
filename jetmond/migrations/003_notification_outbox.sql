-- The durable outbox of WPCOM notifications (database mode; embedded mode uses `outbox_file`).
--
-- A row is written (and committed) before the notification counts as sent, and deleted only after WPCOM
-- accepted it, so a crash or an outage never loses one. `id` orders a site's notifications: they are
-- delivered in `id` order per `blog_id`. `notification_id` is sent in the payload so the receiver can
-- drop the duplicates that at-least-once delivery implies. `owner` is the jetmond host (`host_name`) that
-- delivers the row, so hosts sharing the database never deliver each other's notifications. Times are UTC
-- Unix milliseconds: no zone, no 2038 limit. `dead` rows are dead letters, kept for `jetmond outbox replay`.
--
-- Applied by `jetmond db init` only when the table is missing.

CREATE TABLE `jetmon_notification_outbox` (
	`id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
	`notification_id` char(32) NOT NULL,
	`owner` varchar(255) NOT NULL,
	`blog_id` bigint(20) unsigned NOT NULL,
	`notification` mediumtext NOT NULL,
	`created_at_ms` bigint(20) unsigned NOT NULL,
	`enqueued_at_ms` bigint(20) unsigned NOT NULL,
	`attempts` int(10) unsigned NOT NULL DEFAULT 0,
	`next_attempt_at_ms` bigint(20) unsigned NOT NULL,
	`last_error` varchar(1000) NULL DEFAULT NULL,
	`dead` tinyint(1) unsigned NOT NULL DEFAULT 0,
	PRIMARY KEY (`id`),
	UNIQUE KEY `notification_id` (`notification_id`),
	KEY `owner_dead` (`owner`, `dead`, `id`)
);
