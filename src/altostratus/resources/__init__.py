"""Microsoft.Resources: subscriptions, tenants, resource groups, providers, generic resources."""
