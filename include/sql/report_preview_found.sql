-- The Xero Integration report: of these documents (kinds[i], document_ids[i]), those whose latest look was a
-- preview's, and which preview: their validation errors are the preview's.
SELECT k.kind, k.document_id, latest.run_id
FROM unnest(%(kinds)s::text[], %(document_ids)s::bigint[]) AS k (kind, document_id)
CROSS JOIN LATERAL (SELECT max(rd.run_id) AS run_id FROM xero_sync.run_document rd
                    WHERE rd.kind = k.kind AND rd.document_id = k.document_id) latest
JOIN xero_sync.export_run r ON r.run_id = latest.run_id
WHERE r.kind = 'preview';
