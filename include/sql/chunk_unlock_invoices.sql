SELECT pg_advisory_unlock(id) FROM unnest(%(invoice_ids)s::bigint[]) AS id;
