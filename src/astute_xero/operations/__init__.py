"""Operations on the pipeline's own state: the xero_sync migrations, the mock export, resets, Contact links, and retention."""
