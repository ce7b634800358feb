package accounts

import "strings"

// maxUserAgent bounds the user agent a session or audit event records.
const maxUserAgent = 512

// Client is what a User-Agent header says about the device.
type Client struct {
	// Device is "Mobile", "Tablet", "Desktop", "Bot" or "" when unknown.
	Device string
	// Browser is e.g. "Firefox", "Chrome", "Safari", "Edge", "curl"; "".
	Browser string
	// OS is e.g. "Windows", "macOS", "Linux", "Android", "iOS"; "".
	OS string
}

// ParseUserAgent recognises the common browsers, systems and device
// classes in a User-Agent header. It is a heuristic for display in the
// session list and the new-device mail, never a security decision.
func ParseUserAgent(ua string) Client {
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	l := strings.ToLower(ua)
	var c Client
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(l, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("windows"):
		c.OS = "Windows"
	case has("iphone", "ipad", "ipod"):
		c.OS = "iOS"
	case has("android"):
		c.OS = "Android"
	case has("cros"):
		c.OS = "ChromeOS"
	case has("mac os x", "macintosh"):
		c.OS = "macOS"
	case has("linux"):
		c.OS = "Linux"
	}
	switch {
	case has("edg/", "edge/"):
		c.Browser = "Edge"
	case has("opr/", "opera"):
		c.Browser = "Opera"
	case has("firefox/", "fxios/"):
		c.Browser = "Firefox"
	case has("chrome/", "crios/", "chromium/"):
		c.Browser = "Chrome"
	case has("safari/"):
		c.Browser = "Safari"
	case strings.HasPrefix(l, "curl/"):
		c.Browser = "curl"
	case strings.HasPrefix(l, "wisehosting-cli/"):
		c.Browser = "WiseHosting CLI"
	}
	switch {
	case has("bot", "crawler", "spider"):
		c.Device = "Bot"
	case has("ipad", "tablet"):
		c.Device = "Tablet"
	case has("mobile", "iphone", "android"):
		c.Device = "Mobile"
	case c.OS != "":
		c.Device = "Desktop"
	}
	return c
}

// clip returns s cut to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
