-- What the status sync tells its reader per organisation: drift still open, and the payment picture.
SELECT d.tenant_id,
       (SELECT count(*) FROM xero_sync.drift x WHERE x.tenant_id = d.tenant_id AND x.resolved_at IS NULL) AS open_drift,
       count(*) FILTER (WHERE p.payment_state = 'paid') AS paid,
       count(*) FILTER (WHERE p.payment_state = 'part-paid') AS part_paid,
       count(*) FILTER (WHERE p.payment_state = 'awaiting payment') AS awaiting_payment,
       count(*) FILTER (WHERE p.payment_state = 'overdue') AS overdue,
       coalesce(sum(p.amount_due), 0) AS amount_due
FROM (SELECT unnest(%(tenants)s::text[]) AS tenant_id) d
LEFT JOIN xero_sync.invoice_payment p ON p.tenant_id = d.tenant_id
GROUP BY d.tenant_id
ORDER BY d.tenant_id;
