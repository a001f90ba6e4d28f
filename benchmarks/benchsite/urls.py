"""No HTTP views: the benchmark only serves WebSockets."""

urlpatterns: list = []
