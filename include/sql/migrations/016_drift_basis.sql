-- What an incremental read compares with Astute (issue 20, finding 6): the documents whose side of a drift check
-- Xero changed, not every document it read. A day's read is mostly payments, and a payment changes nothing a drift
-- is about; comparing each paid invoice with its Astute lines cost a page read or more per document at a million.
--
-- Each sync has a number (a sequence, not a clock: worker and database clocks differ, and may step back). A read
-- notes in xero_document the number of the sync that last found changed what drift compares (Xero's status as
-- voided or deleted or neither, SubTotal, Total, line amount types, the Contact, the Astute document it belongs
-- to, found again after it was missing) or found the document at all. An incremental sync compares with Astute
-- what a sync after the last one to finish so marked (a sync that stopped before its drift checks leaves its
-- marks for the next), and every document with a drift open; a full reconciliation compares everything.
CREATE SEQUENCE IF NOT EXISTS xero_sync.status_sync_no;
ALTER TABLE xero_sync.status_sync ADD COLUMN IF NOT EXISTS last_success_no bigint NOT NULL DEFAULT 0;
-- 0: compared by a sync before this column (each compared every document it read); a constant default adds the
-- column without rewriting a million rows.
ALTER TABLE xero_sync.xero_document ADD COLUMN IF NOT EXISTS compared_fields_changed_by bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN xero_sync.status_sync.last_success_no IS
    'the number (xero_sync.status_sync_no) of the organisation''s last sync to finish, its drift checks done';
COMMENT ON COLUMN xero_sync.xero_document.compared_fields_changed_by IS
    'the sync (xero_sync.status_sync_no) that last found changed what drift compares with Astute (0: before it was '
    'noted)';
