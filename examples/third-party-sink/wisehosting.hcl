# A minimal WiseHosting configuration that loads the example alert sink.
# Build the plugin next to this file first:
#
#   cd examples/third-party-sink && go build -o wh-sink-file .
#
# then, from the repository root:
#
#   WISEHOSTING_SECRET=$(head -c 32 /dev/urandom | base64) \
#     ./bin/wisehosting validate examples/third-party-sink/wisehosting.hcl
#
# Reference of every block and attribute: schema/config.md.

platform {
  domain = "apps.localhost"
}

server {
  listen = "127.0.0.1:8443"
  secret = env("WISEHOSTING_SECRET")
}

plugin "alerts" "file" {
  # A command containing "/" is relative to this file's directory; in
  # production use an absolute path (and pin it with checksum = "<sha256>").
  command = "./wh-sink-file"
  events  = ["deployment.*", "app.*"]

  config {
    path  = "/tmp/wisehosting-events.jsonl"
    fsync = false
  }
}
