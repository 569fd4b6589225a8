"""Tests of the deployment assets: dashboards, Prometheus rules, systemd, containers, Kubernetes."""
