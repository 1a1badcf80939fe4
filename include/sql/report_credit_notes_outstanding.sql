SELECT count(*)
FROM astute.credit_note c
JOIN astute.billing_entity e ON e.id = c.billing_entity_id
LEFT JOIN xero_sync.credit_note_export x ON x.credit_note_id = c.id
WHERE c.billing_entity_id = %(billing_entity_id)s
  AND c.status = 'Sent'
  AND e.xero_tenant_id IS NOT NULL
  AND (%(date_from)s::date IS NULL OR c.credit_date >= %(date_from)s::date)
  AND (%(date_to)s::date IS NULL OR c.credit_date <= %(date_to)s::date)
  AND CASE
        WHEN x.credit_note_id IS NULL THEN e.xero_go_live_date IS NOT NULL AND c.credit_date >= e.xero_go_live_date
        ELSE x.status IN ('failed', 'reset', 'sending')
      END;
