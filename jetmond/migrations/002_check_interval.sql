-- Per-site check intervals, for USE_VARIABLE_CHECK_INTERVALS.
--
-- jetmon.js's README documents the option ("each site has its own interval, a column of the table") but
-- its published schema has no such column, so we add one: `check_interval`, in seconds. NULL (or 0) means
-- "no interval of its own": the site is checked once per round, as without the option. The column is
-- nullable with no default so adding it touches no existing row's meaning, and jetmond only reads it when
-- USE_VARIABLE_CHECK_INTERVALS is on, so a database without it keeps working with the option off.
--
-- Applied by `jetmond db init` only when the column is missing.

ALTER TABLE `jetpack_monitor_subscription` ADD COLUMN `check_interval` int(10) unsigned NULL DEFAULT NULL;
