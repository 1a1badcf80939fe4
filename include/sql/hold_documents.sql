-- Hold back documents of a chunk that cannot be sent as they are, each with its reason, for this run.
WITH reasons AS (
    SELECT * FROM unnest(%(document_ids)s::bigint[], %(messages)s::text[]) AS r(document_id, message)
), held AS (
    UPDATE xero_sync.run_document rd SET stage = 'held'
    FROM reasons r
    WHERE rd.run_id = %(run_id)s AND rd.kind = %(kind)s AND rd.document_id = r.document_id AND rd.stage = 'ready'
    RETURNING rd.document_id
)
INSERT INTO xero_sync.validation_issue (run_id, kind, document_id, line_no, rule, message)
SELECT %(run_id)s, %(kind)s, r.document_id, NULL, %(rule)s, r.message
FROM reasons r JOIN held h ON h.document_id = r.document_id;
