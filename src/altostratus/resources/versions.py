"""api-versions ARM's own resource types accept (newest first).

They cover the hybrid profiles (2018-03-01: resources 2018-02-01, 2019-03-01: 2018-05-01, 2020-09-01:
2019-10-01; subscriptions 2016-06-01), the auto-registration policy of azure-mgmt-core (2016-02-01) and the
current SDK releases (resources 2025-04-01, subscriptions 2022-12-01).
"""

RESOURCES = (
    "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-09-01", "2021-04-01",
    "2021-01-01", "2020-10-01", "2020-08-01", "2020-06-01", "2019-10-01", "2019-08-01", "2019-07-01",
    "2019-05-10", "2019-05-01", "2019-03-01", "2018-05-01", "2018-02-01", "2017-05-10", "2016-09-01",
    "2016-07-01", "2016-02-01", "2015-11-01",
)  # fmt: skip

SUBSCRIPTIONS = (
    "2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2019-06-01", "2018-06-01", "2016-06-01",
)  # fmt: skip

# /metadata/endpoints: the flat Azure Stack document, the list of clouds, one cloud object (resources/metadata.py).
METADATA_FLAT = ("2015-01-01",)
METADATA_CLOUD_LIST = ("2019-05-01",)
METADATA = ("2022-09-01", *METADATA_CLOUD_LIST, *METADATA_FLAT)
