-- Per pay run of the entity: how its exported invoices stand in Xero (most recent pay runs first).
SELECT r.pay_run_id, pr.period_ending, r.payment_state, r.invoices, r.paid, r.part_paid, r.awaiting_payment,
       r.overdue, r.not_in_xero, coalesce(r.amount_due, 0)
FROM xero_sync.pay_run_payment r
JOIN astute.pay_run pr ON pr.id = r.pay_run_id
WHERE r.billing_entity_id = %(billing_entity_id)s
ORDER BY pr.period_ending DESC, r.pay_run_id DESC
LIMIT %(limit)s;
