-- The Xero Integration report: the entity's latest preview run, how it ended for the entity, its Airflow
-- DAG run, and the first export run after it (if any): the preview then says what that export was to send.
SELECT r.run_id, r.started_at, r.finished_at, r.status, re.decision, re.detail, r.dag_id, r.airflow_run_id,
       (SELECT min(later.run_id) FROM xero_sync.export_run later
        JOIN xero_sync.run_entity le ON le.run_id = later.run_id AND le.billing_entity_id = re.billing_entity_id
        WHERE later.kind = 'export' AND later.run_id > r.run_id)
FROM xero_sync.export_run r
JOIN xero_sync.run_entity re ON re.run_id = r.run_id AND re.billing_entity_id = %(billing_entity_id)s
WHERE r.kind = 'preview'
ORDER BY r.run_id DESC
LIMIT 1;
