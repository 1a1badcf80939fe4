-- Every billing entity, with its Xero organisation (tenant id) and whether it is live: the onboarding check.
SELECT id, name, xero_tenant_id, xero_go_live_date IS NOT NULL AS live
FROM astute.billing_entity
ORDER BY id;
