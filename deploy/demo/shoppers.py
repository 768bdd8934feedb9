"""Production traffic for the demo (a locustfile): shoppers placing orders, back to back.

Each user waits for its answer before sending the next order, so the load is a fixed number of
requests in flight: one replica queues them (latency rises), more replicas share them (it falls).
"""

from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0)

    @task
    def order(self) -> None:
        self.client.get("/orders", name="/orders")
