-- The entity's last runs, with what the API log says of each: chunks sent and their outcomes.
SELECT r.run_id, r.kind, r.status, r.started_at, r.finished_at, re.decision, re.detail,
       (SELECT count(*) FROM xero_sync.api_log a
        WHERE a.run_id = r.run_id AND a.tenant_id = re.tenant_id AND a.endpoint = 'Invoices' AND a.method = 'PUT'),
       (SELECT count(*) FROM xero_sync.invoice_export x JOIN astute.invoice i ON i.id = x.invoice_id
        WHERE x.run_id = r.run_id AND i.billing_entity_id = re.billing_entity_id AND x.status = 'exported'),
       (SELECT count(*) FROM xero_sync.invoice_export x JOIN astute.invoice i ON i.id = x.invoice_id
        WHERE x.run_id = r.run_id AND i.billing_entity_id = re.billing_entity_id AND x.status = 'failed'),
       (SELECT count(*) FROM xero_sync.run_invoice ri
        WHERE ri.run_id = r.run_id AND ri.billing_entity_id = re.billing_entity_id AND ri.stage = 'held'),
       (SELECT count(*) FROM xero_sync.invoice_export x JOIN astute.invoice i ON i.id = x.invoice_id
        WHERE x.run_id = r.run_id AND i.billing_entity_id = re.billing_entity_id AND x.status = 'mock_exported')
FROM xero_sync.export_run r
JOIN xero_sync.run_entity re ON re.run_id = r.run_id AND re.billing_entity_id = %(billing_entity_id)s
ORDER BY r.run_id DESC
LIMIT %(limit)s;
