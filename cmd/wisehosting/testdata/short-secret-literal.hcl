# Fixture: a short secret written literally in the file.
platform {
  domain = "apps.localhost"
}

server {
    secret = "tiny-s3cr3t"
}
