# Fixture: a duration with an unknown unit.
data_dir = "./data"

platform {
  domain = "apps.localhost"
}

server {
  listen = "127.0.0.1:8443"
  secret = file("data/secret")
}

scheduler {
  poll_interval = "5 parsecs"
}
