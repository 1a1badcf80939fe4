"""What the pipeline tells people: the run summary, the Xero Integration report (text, HTML file, and the Airflow UI page), and the API log."""
