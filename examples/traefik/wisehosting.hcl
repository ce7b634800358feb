# WiseHosting with Traefik at the edge (pull): Traefik's HTTP provider polls
# the core for its dynamic configuration. See README.md next to this file.

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
plugin "proxy" "traefik" {
  config {
    entry_points      = ["web", "websecure"]  # the routers of the apps
    cert_resolver     = env("TRAEFIK_CERT_RESOLVER", "letsencrypt")
    http              = "redirect"            # plain HTTP on http_entry_points redirects to HTTPS
    http_entry_points = ["web"]
  }
}
