-- Session advisory locks on the documents this worker is about to send (keys from DocumentKind.lock_keys):
-- held until their outcome is recorded, freed with the connection if the worker dies. A document locked
-- by another live worker (another run's chunk) is left to it.
SELECT key FROM unnest(%(keys)s::bigint[]) AS key WHERE pg_try_advisory_lock(key);
