"""Everything the tests share: the live server, SDK lines and credentials, request bodies, synthetic upstreams.

Test modules import helpers from here (and fixtures from conftest), never from one another, so a test file can
move or be split without breaking another.
"""
