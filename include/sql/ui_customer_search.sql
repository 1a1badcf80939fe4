-- Link to Xero: customers whose id is the search, or whose name contains it (case-insensitive), with how
-- many Xero organisations each is linked in.
SELECT c.id, c.name, (SELECT count(*) FROM xero_sync.contact_link l WHERE l.customer_id = c.id)
FROM astute.customer c
WHERE c.id = %(customer_id)s::bigint OR c.name ILIKE %(name_pattern)s
ORDER BY c.id = %(customer_id)s::bigint DESC NULLS LAST, c.name, c.id
LIMIT %(limit)s;
