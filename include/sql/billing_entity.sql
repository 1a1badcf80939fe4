SELECT id, name, xero_tenant_id, xero_go_live_date FROM astute.billing_entity WHERE id = %(billing_entity_id)s;
