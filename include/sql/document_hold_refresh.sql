-- The documents this run's validation held back, kept apart from the work lists: the next runs re-check
-- them first, over and above what they have room to send, and drop them from here once they pass.
WITH passed AS (
    DELETE FROM xero_sync.document_hold h
    USING xero_sync.run_document rd
    WHERE rd.run_id = %(run_id)s AND rd.kind = h.kind AND rd.document_id = h.document_id AND rd.stage <> 'held'
)
INSERT INTO xero_sync.document_hold (kind, document_id, run_id)
SELECT kind, document_id, run_id FROM xero_sync.run_document
WHERE run_id = %(run_id)s AND stage = 'held'
ON CONFLICT (kind, document_id) DO UPDATE SET run_id = EXCLUDED.run_id, held_at = now();
