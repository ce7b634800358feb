# Fixture: a typo'd attribute (pol_interval) in the scheduler block.
data_dir = "./data"

platform {
  domain = "apps.localhost"
}

server {
  listen = "127.0.0.1:8443"
  secret = file("data/secret")
}

scheduler {
  placement    = "least-loaded"
  pol_interval = "5s"
}
