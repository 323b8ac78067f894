"""Pure decisions and renderings: no Kubernetes client, no Kopf, no Feast, no I/O.

Every function here takes plain data (models, dicts) and returns plain data, so it
is tested without a cluster; the controller does the reading and writing around it.
"""
