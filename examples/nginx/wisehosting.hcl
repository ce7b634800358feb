# WiseHosting with nginx at the edge (push): the core writes one server
# block per app into a directory nginx.conf includes, checks it with
# nginx -t and reloads nginx. See README.md next to this file.

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
plugin "proxy" "nginx" {
  config {
    dir    = env("NGINX_SITES_DIR", "/etc/nginx/wisehosting.d")  # must exist
    listen = [env("NGINX_LISTEN", "80")]
    prefix = env("NGINX_PREFIX", "/usr/share/nginx")            # Debian's compiled-in prefix
    conf   = env("NGINX_CONF", "/etc/nginx/nginx.conf")
  }
}
