-- The chunks of one kind a run planned, as ChunkKeys: the count is of the organisation's chunks of both kinds.
-- Listed round-robin over organisations (every organisation's first chunk, then every second, ...): Airflow
-- starts mapped tasks in this order, so organisations export side by side, each at its own bound, and a
-- large backlog never queues ahead of a small one.
SELECT c.run_id, c.tenant_id, c.kind, c.chunk_no, c.chunk_count, o.entity_name
FROM (SELECT run_id, tenant_id, kind, chunk_no, count(*) OVER (PARTITION BY tenant_id) AS chunk_count
      FROM xero_sync.export_chunk WHERE run_id = %(run_id)s) c
JOIN (SELECT DISTINCT ON (tenant_id) tenant_id, entity_name
      FROM xero_sync.run_entity WHERE run_id = %(run_id)s
      ORDER BY tenant_id, billing_entity_id) o ON o.tenant_id = c.tenant_id
WHERE c.kind = %(kind)s
ORDER BY c.chunk_no, c.tenant_id;
