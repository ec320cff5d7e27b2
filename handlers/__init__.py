"""Transport layer: thin translations between the HTTP contract (openapi.yaml) and the domain.

Every public function in the resource modules is named by an ``operationId`` in openapi.yaml.
"""
