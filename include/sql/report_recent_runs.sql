-- The entity's last runs, with what the API log says of each: chunks sent and their outcomes.
SELECT r.run_id, r.kind, r.status, r.started_at, r.finished_at, re.decision, re.detail,
       (SELECT count(*) FROM xero_sync.api_log a
        WHERE a.run_id = r.run_id AND a.tenant_id = re.tenant_id AND a.method = 'PUT'
          AND a.endpoint IN ('Invoices', 'CreditNotes')),
       (SELECT count(*) FROM xero_sync.document_export x
        JOIN xero_sync.astute_document d ON d.kind = x.kind AND d.document_id = x.document_id
        WHERE x.run_id = r.run_id AND d.billing_entity_id = re.billing_entity_id AND x.status = 'exported'
          AND x.kind = 'invoice'),
       (SELECT count(*) FROM xero_sync.document_export x
        JOIN xero_sync.astute_document d ON d.kind = x.kind AND d.document_id = x.document_id
        WHERE x.run_id = r.run_id AND d.billing_entity_id = re.billing_entity_id AND x.status = 'exported'
          AND x.kind = 'credit_note'),
       (SELECT count(*) FROM xero_sync.document_export x
        JOIN xero_sync.astute_document d ON d.kind = x.kind AND d.document_id = x.document_id
        WHERE x.run_id = r.run_id AND d.billing_entity_id = re.billing_entity_id AND x.status = 'failed'),
       (SELECT count(*) FROM xero_sync.run_document rd
        WHERE rd.run_id = r.run_id AND rd.billing_entity_id = re.billing_entity_id AND rd.stage = 'held'),
       (SELECT count(*) FROM xero_sync.credit_note_export x JOIN astute.credit_note c ON c.id = x.credit_note_id
        WHERE x.allocation_run_id = r.run_id AND c.billing_entity_id = re.billing_entity_id
          AND x.allocation_status = 'allocated'),
       (SELECT count(*) FROM xero_sync.document_export x
        JOIN xero_sync.astute_document d ON d.kind = x.kind AND d.document_id = x.document_id
        WHERE x.run_id = r.run_id AND d.billing_entity_id = re.billing_entity_id AND x.status = 'mock_exported')
FROM xero_sync.export_run r
JOIN xero_sync.run_entity re ON re.run_id = r.run_id AND re.billing_entity_id = %(billing_entity_id)s
ORDER BY r.run_id DESC
LIMIT %(limit)s;
