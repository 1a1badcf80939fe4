-- For the statements that look at a whole read at once (this transaction only): hash tables that hold a million
-- documents in memory rather than in batches on disk, and no JIT compilation (it costs more than it saves here,
-- and a scoped incremental check would pay it for a thousand rows).
SET LOCAL work_mem = '64MB';
SET LOCAL jit = off;
