"""Load for the carts service: mostly carts, sometimes the front page."""

from locust import HttpUser, between, task


class Shopper(HttpUser):
    wait_time = between(0.1, 0.5)

    @task(1)
    def front_page(self) -> None:
        self.client.get("/")

    @task(3)
    def carts(self) -> None:
        self.client.get("/carts")
