-- 002_runtime_log_chunks: runtime logs are stored in chunks.
--
-- One row holds consecutive lines of one app's output stream (stdout, stderr
-- or system) as the hub received them in one message, joined with '\n' in
-- the line column; no stored line contains '\n' itself. ts is the first
-- line's time, ts_end the last one's (NULL means ts), line_count how many
-- lines the row holds (1 for a row written as a single line).
--
-- Why: COPY of one row per line peaks at about 34 MiB/s of 100-byte lines on
-- the reference 2-core machine, with nothing else running, which is below
-- the 32 MiB/s the hub must persist once it shares the machine; rows of 16
-- or more lines reach 140-200 MiB/s (measured with CopyFrom, 4 MiB batches).
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

ALTER TABLE runtime_logs
    ADD COLUMN ts_end     timestamptz,
    ADD COLUMN line_count integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT runtime_logs_line_count_check CHECK (line_count >= 1),
    ADD CONSTRAINT runtime_logs_ts_end_check CHECK (ts_end IS NULL OR ts_end >= ts);
