"""Microsoft.Insights: autoscale settings, stored and validated (Azure Stack Hub has no autoscale engine)."""
