# Fixture: the secret file holds fewer than 16 characters.
platform {
  domain = "apps.localhost"
}

server {
  secret = file("data/short-secret")
}
