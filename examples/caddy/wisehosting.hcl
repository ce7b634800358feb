# WiseHosting with Caddy at the edge (push): the core loads every change of
# the route table into Caddy through its admin API. See README.md next to
# this file.

data_dir = env("WISEHOSTING_DATA_DIR", "./data")

platform {
  # Apps are served at <slug>.<domain>: point a wildcard DNS record at the proxy.
  domain = env("WISEHOSTING_DOMAIN", "apps.example.com")
}

server {
  listen = env("WISEHOSTING_LISTEN", "127.0.0.1:8443")
  secret = env("WISEHOSTING_SECRET")
}

# The bearer token a proxy presents to GET /v1/traefik/proxy-config and
# GET /v1/proxy/<name>/config (compared in constant time).
proxy {
  token = env("WISEHOSTING_PROXY_TOKEN")
}

scheduler {
  placement = "least-loaded"
}

plugin "scheduler" "least-loaded" {}
plugin "plans" "static" {}
plugin "alerts" "log" {}

# The edge proxy: the only block that differs between examples/traefik,
# examples/caddy and examples/nginx.
plugin "proxy" "caddy" {
  config {
    admin        = env("CADDY_ADMIN", "http://127.0.0.1:2019")
    tls          = env("CADDY_TLS", "acme")  # "acme", "internal" or "off"
    http_listen  = env("CADDY_HTTP_LISTEN", ":80")
    https_listen = env("CADDY_HTTPS_LISTEN", ":443")
    # Certificates at the first handshake, only for hosts the core routes:
    # on_demand_ask = "http://127.0.0.1:8443/v1/proxy/tls/ask"
  }
}
