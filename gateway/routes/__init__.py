"""The API's routers, one per Keptn backend (api, controlPlane, resource-service, mongodb-datastore), plus
the event stream and the health endpoints."""
