CREATE TABLE `polls` (
	`id` text PRIMARY KEY NOT NULL,
	`station_id` text NOT NULL,
	`session_id` text NOT NULL,
	`question` text NOT NULL,
	`options` text NOT NULL,
	`multiple` integer NOT NULL,
	`opened_by` text,
	`opened_at` integer NOT NULL,
	`closes_at` integer NOT NULL,
	`closed_at` integer NOT NULL,
	`close_reason` text NOT NULL,
	`tallies` text NOT NULL,
	`votes` integer NOT NULL,
	`voters` integer NOT NULL,
	`eligible` integer NOT NULL,
	FOREIGN KEY (`station_id`) REFERENCES `stations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`session_id`) REFERENCES `broadcast_sessions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`opened_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `polls_station_opened` ON `polls` (`station_id`,`opened_at`);--> statement-breakpoint
CREATE INDEX `polls_session_opened` ON `polls` (`session_id`,`opened_at`);--> statement-breakpoint
CREATE TABLE `session_minutes` (
	`session_id` text NOT NULL,
	`station_id` text NOT NULL,
	`minute` integer NOT NULL,
	`listeners` integer NOT NULL,
	`peak` integer NOT NULL,
	`distinct_listeners` integer NOT NULL,
	`joins` integer NOT NULL,
	`chat_messages` integer NOT NULL,
	`reactions` text NOT NULL,
	`poll_votes` integer NOT NULL,
	`favourites_gained` integer NOT NULL,
	`favourites_lost` integer NOT NULL,
	`listening_ms` integer NOT NULL,
	PRIMARY KEY(`session_id`, `minute`),
	FOREIGN KEY (`session_id`) REFERENCES `broadcast_sessions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`station_id`) REFERENCES `stations`(`id`) ON UPDATE no action ON DELETE no action
);
