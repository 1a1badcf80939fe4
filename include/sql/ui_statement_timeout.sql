-- A page of the report in the Airflow UI never holds the API server's worker longer than this
-- (for the transaction the page reads in).
SELECT set_config('statement_timeout', %(timeout)s, true);
