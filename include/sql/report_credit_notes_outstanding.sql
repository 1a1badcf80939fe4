SELECT count(*)
FROM xero_sync.outstanding_credit_note o
WHERE o.billing_entity_id = %(billing_entity_id)s
  AND (%(date_from)s::date IS NULL OR o.credit_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR o.credit_date <= %(date_to)s::date);
