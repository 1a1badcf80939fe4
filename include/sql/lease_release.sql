DELETE FROM xero_sync.lease WHERE lease_key = ANY (%(keys)s::text[]) AND holder = %(holder)s;
