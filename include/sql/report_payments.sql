-- The entity's exported invoices as Xero last showed them (xero_status_sync), per payment state, in the range.
SELECT p.payment_state, count(*), coalesce(sum(p.total), 0), coalesce(sum(p.amount_due), 0)
FROM xero_sync.invoice_payment p
JOIN astute.invoice i ON i.id = p.invoice_id
WHERE p.billing_entity_id = %(billing_entity_id)s
  AND (%(date_from)s::date IS NULL OR i.invoice_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR i.invoice_date <= %(date_to)s::date)
GROUP BY p.payment_state;
