-- About how many calls a full read of the organisation takes: its documents of each kind as last read, a page of
-- 1,000 a call, and each kind's last page (invoices keyed in by hand in Xero cost pages too, and are not counted).
SELECT (ceil(count(*) FILTER (WHERE kind = 'invoice') / 1000.0)
        + ceil(count(*) FILTER (WHERE kind = 'credit_note') / 1000.0))::integer + 2
FROM xero_sync.xero_document
WHERE tenant_id = %(tenant_id)s;
