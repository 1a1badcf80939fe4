# The image every service of docker-compose.yaml runs (the Airflow components, the demo's Astute loader and
# Xero sandbox): Airflow's official image with this project installed at build time, nothing at start.
#
# The base is the Airflow version requirements.txt pins (tests/test_compose.py checks they agree). It already
# holds Airflow's own providers; requirements.txt (our exact pins, the Celery provider among them) is installed
# over them, with Airflow's version held, as Airflow's docs say to extend the image
# (https://airflow.apache.org/docs/docker-stack/build.html).
FROM apache/airflow:3.3.2-python3.11

USER root
RUN install -d -o airflow -g 0 /opt/astute-xero
USER airflow
WORKDIR /opt/astute-xero

# 1. The dependencies (their own layer: rebuilt only when a pin changes).
COPY --chown=airflow:0 requirements.txt ./
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r requirements.txt

# 2. The provider package (the Xero connection type, hook, `astute-xero`, the SQL it runs), not editable.
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 src/ src/
COPY --chown=airflow:0 include/ include/
RUN pip install --no-cache-dir --no-deps . \
    && python -c "from importlib.metadata import version; print('astute-xero-provider', version('astute-xero-provider'))"

# 3. The demo's stand-ins (devtools.compose_init: the Xero sandbox and the Astute loader), run by the
#    xero-sandbox and astute-init services with PYTHONPATH=/opt/astute-xero. Airflow never imports them.
COPY --chown=airflow:0 devtools/ devtools/
COPY --chown=airflow:0 xero_sandbox/ xero_sandbox/

# 4. The DAGs and the UI plugin, in Airflow's default folders: baked in, not mounted, so every component
#    runs the same DAG code as the provider version beside it (the DAGs import it).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/

# Mount points of the named volumes (a new volume takes the ownership of the directory it is mounted on):
# task logs, the report pages and api_log archives (XERO_REPORT_DIR, XERO_ARCHIVE_DIR), the UI's password file.
RUN mkdir -p /opt/airflow/logs /opt/airflow/data/reports /opt/airflow/data/archive /opt/airflow/auth

WORKDIR /opt/airflow
