-- A full reconciliation's end-of-read statements (this transaction only) compare every document of the
-- organisation: scans and hash joins, never a look-up per document. The planner cannot tell by itself: it sizes a
-- CTE's or a union's distinct values at a guess (200), and would look up a million documents' lines one by one.
SET LOCAL enable_nestloop = off;
