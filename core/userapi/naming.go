package userapi

import (
	"fmt"
	"math/rand/v2"
	"regexp"
)

// appNameRE is the seed's app name rule (7–32 of [a-z0-9-]) narrowed to
// what a DNS label allows, since the name is the app's subdomain: it
// starts and ends with a letter or digit.
var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{5,30}[a-z0-9]$`)

// reservedNames are names no app may take: they are, or look like, the
// platform's own hosts and well-known service names (shorter reserved
// words like www or api are already below the 7-character minimum).
var reservedNames = map[string]bool{
	"wisehosting": true, "dashboard": true, "console": true, "support": true, "billing": true,
	"metrics": true, "grafana": true, "prometheus": true, "localhost": true, "traefik": true,
	"webmail": true, "autoconfig": true, "autodiscover": true, "administrator": true,
	"postmaster": true, "hostmaster": true, "webmaster": true, "default": true, "example": true,
	"account": true, "accounts": true, "sign-in": true, "sign-up": true, "signup": true,
	"password": true, "security": true, "official": true, "payments": true, "checkout": true,
	"internal": true, "platform": true, "workers": true, "proxy-config": true, "healthcheck": true,
	"openapi": true, "swagger": true, "graphql": true, "websocket": true, "cdn-assets": true,
	"mailserver": true, "nameserver": true, "wisehost": true, "wise-hosting": true,
}

// ValidateAppName checks a user's chosen app name: 7–32 characters of
// a-z, 0-9 and '-', starting and ending with a letter or digit, not
// reserved.
func ValidateAppName(name string) error {
	if len(name) < 7 || len(name) > 32 {
		return fmt.Errorf("the app name must be 7 to 32 characters long, not %d", len(name))
	}
	if !appNameRE.MatchString(name) {
		return fmt.Errorf("the app name %q may hold only a-z, 0-9 and '-', and must start and end with a letter or digit", name)
	}
	if name[2:4] == "--" {
		return fmt.Errorf("the app name %q may not have \"--\" as its 3rd and 4th characters (reserved for internationalized names, which can imitate others)", name)
	}
	if reservedNames[name] {
		return fmt.Errorf("the app name %q is reserved", name)
	}
	return nil
}

var adjectives = [64]string{
	"amber", "ancient", "autumn", "bold", "brave", "bright", "calm", "clever",
	"cosmic", "crimson", "crisp", "dancing", "daring", "dawn", "eager", "electric",
	"emerald", "fancy", "fearless", "floral", "frosty", "gentle", "gilded", "glowing",
	"golden", "grand", "happy", "hidden", "humble", "icy", "jolly", "keen",
	"kind", "lively", "lucky", "lunar", "mellow", "misty", "noble", "quiet",
	"rapid", "rustic", "scarlet", "serene", "shiny", "silent", "silver", "sleek",
	"smooth", "snowy", "solar", "spry", "stellar", "stormy", "sunny", "swift",
	"tidy", "twilight", "velvet", "vivid", "wandering", "warm", "wild", "witty",
}

var nouns = [64]string{
	"anchor", "aurora", "badger", "beacon", "bison", "breeze", "brook", "canyon",
	"cedar", "comet", "coral", "crane", "creek", "dolphin", "dune", "eagle",
	"ember", "falcon", "fern", "fjord", "forest", "fox", "galaxy", "glacier",
	"harbor", "hawk", "heron", "island", "lagoon", "lantern", "lark", "lotus",
	"maple", "meadow", "meteor", "moose", "nebula", "oak", "ocean", "orchid",
	"otter", "owl", "panda", "pebble", "phoenix", "pine", "planet", "prairie",
	"quartz", "raven", "reef", "river", "robin", "sequoia", "sparrow", "spruce",
	"summit", "thunder", "tiger", "tundra", "valley", "willow", "wolf", "zephyr",
}

// GenerateAppName returns a random adjective-noun-NNNN name that passes
// ValidateAppName; the caller retries on a collision.
func GenerateAppName() string {
	for {
		n := fmt.Sprintf("%s-%s-%04d", adjectives[rand.IntN(len(adjectives))], nouns[rand.IntN(len(nouns))], rand.IntN(10000))
		if ValidateAppName(n) == nil {
			return n
		}
	}
}
