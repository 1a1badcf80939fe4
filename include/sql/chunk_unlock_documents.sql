SELECT pg_advisory_unlock(key) FROM unnest(%(keys)s::bigint[]) AS key;
