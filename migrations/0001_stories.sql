CREATE TABLE `play_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`story_id` text NOT NULL,
	`host_id` text NOT NULL,
	`status` text NOT NULL,
	`max_players` integer NOT NULL,
	`choice_seconds` integer NOT NULL,
	`created_at` integer NOT NULL,
	`ended_at` integer,
	`end_reason` text,
	FOREIGN KEY (`story_id`) REFERENCES `stories`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`host_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `play_sessions_story` ON `play_sessions` (`story_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `play_steps` (
	`session_id` text NOT NULL,
	`step` integer NOT NULL,
	`passage_id` text NOT NULL,
	`choice_id` text,
	`tallies` text NOT NULL,
	`reason` text,
	`decided_at` integer NOT NULL,
	PRIMARY KEY(`session_id`, `step`),
	FOREIGN KEY (`session_id`) REFERENCES `play_sessions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `stories` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`title` text NOT NULL,
	`body` text DEFAULT '' NOT NULL,
	`body_seq` integer DEFAULT 0 NOT NULL,
	`graph` text,
	`published` integer DEFAULT false NOT NULL,
	`published_at` integer,
	`access_version` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`owner_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `stories_owner` ON `stories` (`owner_id`);--> statement-breakpoint
CREATE INDEX `stories_published` ON `stories` (`published`,`published_at`,`id`);--> statement-breakpoint
CREATE TABLE `story_coauthors` (
	`story_id` text NOT NULL,
	`user_id` text NOT NULL,
	`added_at` integer NOT NULL,
	PRIMARY KEY(`story_id`, `user_id`),
	FOREIGN KEY (`story_id`) REFERENCES `stories`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `story_coauthors_user` ON `story_coauthors` (`user_id`);