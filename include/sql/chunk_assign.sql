-- Apply the planner's assignments (COPY-loaded into chunk_assignment) in one statement; chunks past an
-- organisation's share of this run's budget are deferred to the next run.
UPDATE xero_sync.run_document rd
SET chunk_no = CASE WHEN a.chunk_no <= al.chunks THEN a.chunk_no END,
    stage = CASE WHEN a.chunk_no <= al.chunks THEN rd.stage ELSE 'deferred' END
FROM chunk_assignment a
JOIN chunk_allowance al ON al.tenant_id = a.tenant_id
WHERE rd.run_id = %(run_id)s AND rd.kind = a.kind AND rd.document_id = a.document_id;
