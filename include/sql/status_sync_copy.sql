COPY xero_page (kind, xero_id, number, status, xero_contact_id, contact_name, line_amount_types, sub_total, total,
                amount_due, amount_paid, amount_credited, due_date, fully_paid_on, last_payment_date, updated_in_xero,
                carries_astute_url)
FROM STDIN;
