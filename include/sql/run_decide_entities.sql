-- Which billing entities this run exports for, and why the others are skipped.
INSERT INTO xero_sync.run_entity (run_id, billing_entity_id, entity_name, tenant_id, decision, detail)
SELECT %(run_id)s, e.id, e.name, e.xero_tenant_id,
       CASE WHEN e.xero_tenant_id IS NULL THEN 'skipped_unlinked'
            WHEN e.xero_go_live_date IS NULL THEN 'skipped_not_live'
            ELSE 'export' END,
       CASE WHEN e.xero_tenant_id IS NULL
                THEN 'not linked to a Xero organisation (billing_entity.xero_tenant_id is empty)'
            WHEN e.xero_go_live_date IS NULL
                THEN 'not live with Xero yet (billing_entity.xero_go_live_date is empty)' END
FROM astute.billing_entity e
WHERE %(entity_ids)s::bigint[] IS NULL OR e.id = ANY (%(entity_ids)s::bigint[]);
