"""The tenant boundary at admission: a validating webhook asking the API server what the requesting user may do."""
