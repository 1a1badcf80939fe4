-- Credit notes in Xero that Xero would not allocate to their invoice: finance allocates them by hand.
SELECT x.credit_note_id, c.credit_note_number, c.credit_date, x.allocation_detail
FROM xero_sync.credit_note_export x
JOIN astute.credit_note c ON c.id = x.credit_note_id
WHERE c.billing_entity_id = %(billing_entity_id)s AND x.allocation_status = 'failed'
  AND (%(date_from)s::date IS NULL OR c.credit_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR c.credit_date <= %(date_to)s::date)
ORDER BY c.credit_date, x.credit_note_id;
