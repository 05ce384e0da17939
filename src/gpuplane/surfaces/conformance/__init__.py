"""Conformance runners: scenario files re-expressed from Kueue's and Kubernetes' own tests."""
