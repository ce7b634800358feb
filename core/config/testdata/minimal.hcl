platform { domain = "apps.example.com" }
server { secret = "0123456789abcdef" }
