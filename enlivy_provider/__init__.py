"""Apache Airflow provider for Enlivy."""

__version__ = "0.1.0"
