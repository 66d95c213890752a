"""Template deployments (Microsoft.Resources/deployments): the REST surface, preflight, what-if and the engine
that deploys resource by resource through the one request pipeline."""
