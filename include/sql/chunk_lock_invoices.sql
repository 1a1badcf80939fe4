-- Session advisory locks on the invoices this worker is about to send: held until their outcome is
-- recorded, freed with the connection if the worker dies. An invoice locked by another live worker
-- (another run's chunk) is left to it.
SELECT id FROM unnest(%(invoice_ids)s::bigint[]) AS id WHERE pg_try_advisory_lock(id);
