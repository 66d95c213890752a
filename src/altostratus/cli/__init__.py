"""The `alto` command: starts the server (`alto up`) and is otherwise a client of the REST API."""
