SELECT pg_advisory_unlock(hashtext(%(tenant_id)s), %(slot)s);
