# A configuration exercising every block and attribute of core/config.
# The secrets come from env() and file() so the file itself holds none.

data_dir = "/var/lib/wisehosting"

platform {
  domain = "apps.example.com"
}

server {
  listen           = "0.0.0.0:8443"
  secret           = env("WISEHOSTING_SECRET")
  tls_cert         = "tls/cert.pem"
  tls_key          = "tls/key.pem"
  base_url         = "https://paas.example.com/"
  shutdown_timeout = "45s"
  metrics_token    = file("secrets/metrics_token")
  previous_secrets = [env("WISEHOSTING_OLD_SECRET"), file("secrets/older_secret")]
}

database {
  url               = env("DATABASE_URL", "postgres://wisehosting@db.internal:5432/wisehosting?sslmode=verify-full")
  password          = env("DATABASE_PASSWORD")
  max_conns         = 40
  min_conns         = 4
  max_conn_lifetime = "10m"
}

scheduler {
  placement      = "least-loaded"
  poll_interval  = "10s"
  stuck_after    = "20m"
  worker_timeout = "90s"
  batch_size     = 500
  concurrency    = 3
}

worker {
  build_timeout          = "15m"
  start_timeout          = "1m"
  heartbeat_interval     = "20s"
  log_retention          = "14d"
  allow_loopback_address = false
}

container {
  port_range_start = 30000
  port_range_end   = 39999
  network          = "wh-apps"
}

security {
  api_rate_window       = "2m"
  session_ttl           = "30d"
  secure_cookies        = true
  allow_private_targets = false
  allow_local_repos     = true
}

logging {
  level = "debug"
  json  = true
}

smtp {
  host     = "smtp.example.com"
  port     = 465
  username = "postmaster@example.com"
  password = env("SMTP_PASSWORD")
  from     = "WiseHosting <noreply@example.com>"
  starttls = false
  ca_file  = "tls/smtp-ca.pem"
}

oauth "github" {
  client_id     = "Iv1.0123456789abcdef"
  client_secret = env("GITHUB_CLIENT_SECRET")
  scopes        = ["read:user", "user:email", "repo"]
}

oauth "gitlab" {
  client_id     = "gitlab-client-id"
  client_secret = file("secrets/gitlab_client_secret")
  auth_url      = "https://gitlab.example.com/oauth/authorize"
  token_url     = "https://gitlab.example.com/oauth/token"
  api_url       = "https://gitlab.example.com/api/v4"
}

proxy {
  token = env("WISEHOSTING_PROXY_TOKEN")
}

plugin "scheduler" "least-loaded" {}

plugin "proxy" "traefik" {
  config {
    entry_points  = ["web", "websecure"]
    cert_resolver = "letsencrypt"
  }
}

plugin "alerts" "ops-chat" {
  command  = "/opt/wh-plugins/wh-sink-ntfy"
  args     = ["--verbose"]
  env      = { NTFY_TOKEN = env("NTFY_TOKEN", "") }
  checksum = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
  events   = ["app.*", "deployment.failed"]
  config {
    url = "ntfy://ntfy.sh/my-topic"
  }
}

plugin "plans" "static" {
  config {
    plan "free" {
      max_apps  = 1
      cpu       = 1
      memory    = "512MiB"
      disk      = "1GiB"
      bandwidth = "10mbit"
    }
  }
}

domains {
  resolver         = "[2001:db8::53]:53"
  recheck_interval = "12h"
  lookup_timeout   = "3s"
  grace_period     = "3d"
}
