"""What operators look at: Prometheus metrics, health and readiness, served by ``durabot run`` on the admin port."""
