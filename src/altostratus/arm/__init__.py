"""ARM conventions shared by every resource provider: routing, api-versions, errors, paging, LRO, auth."""
