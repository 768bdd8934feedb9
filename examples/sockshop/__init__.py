"""A Sock Shop style project: Keptn files and the demo carts service."""
