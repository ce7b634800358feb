package outbound

import (
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the URL CheckURL returns, when no error
		wantErr  string
	}{
		{name: "https with query", in: "https://hooks.example.com/x?token=abc", want: "https://hooks.example.com/x?token=abc"},
		{name: "http with port", in: "http://hooks.example.com:8080/hook", want: "http://hooks.example.com:8080/hook"},
		{name: "upper-case scheme", in: "HTTPS://hooks.example.com/", want: "https://hooks.example.com/"},
		{name: "literal addresses are not judged", in: "http://127.0.0.1:8080/hook", want: "http://127.0.0.1:8080/hook"},
		{name: "IPv6 with zone", in: "http://[fe80::1%25eth0]:8080/", want: "http://[fe80::1%25eth0]:8080/"},

		{name: "empty", in: "", wantErr: "url is required"},
		{name: "ftp", in: "ftp://hooks.example.com/", wantErr: `url: the scheme must be http or https, not "ftp"`},
		{name: "relative", in: "/hook", wantErr: "scheme must be http or https"},
		{name: "no host", in: "https:///hook", wantErr: "url must be absolute: http(s)://host[:port]/path"},
		{name: "zone that does not print back", in: "http://[::%25\x81]", wantErr: "url does not read back as itself once printed"},
		{name: "opaque", in: "https:hooks.example.com", wantErr: "must be absolute"},
		{name: "user info", in: "https://user:pass@hooks.example.com/", wantErr: "url must not hold a user name or password"},
		{name: "fragment", in: "https://hooks.example.com/#x", wantErr: "url must not have a #fragment (it is never sent)"},
		{name: "empty fragment", in: "https://hooks.example.com/#", wantErr: "fragment"},
		{name: "bad port", in: "https://hooks.example.com:99999/", wantErr: `url: port "99999" is not between 1 and 65535`},
		{name: "port 0", in: "https://hooks.example.com:0/", wantErr: `port "0"`},
		{name: "empty port", in: "https://hooks.example.com:/", wantErr: "url: empty port"},
		{name: "no host name", in: "https://:8080/", wantErr: "url has no host name"},
		{name: "white space", in: " https://hooks.example.com/", wantErr: "url has leading or trailing white space"},
		{name: "unparsable", in: "https://hooks.example.com/%zz", wantErr: "url is not a valid URL"},
		{name: "control character", in: "https://hooks.example.com/\x7f", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		u, err := CheckURL(tt.in)
		if tt.wantErr == "" {
			if err != nil || u.String() != tt.want {
				t.Errorf("%s: %v, %v; want %q", tt.name, u, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestCheckURLHidesTheURL: errors name the scheme or port at most; a token
// in the URL's path, query, user info or fragment never shows.
func TestCheckURLHidesTheURL(t *testing.T) {
	for _, in := range []string{
		"ftp://hooks.example.com/sekrit-path?token=sekrit-query",
		"https://user:sekrit-pass@hooks.example.com/",
		"https://hooks.example.com:99999/sekrit-path?token=sekrit-query",
		"https://hooks.example.com/sekrit-path%zz?token=sekrit-query",
		"https://hooks.example.com/sekrit-path#sekrit-fragment",
		"https://hooks.example.com/sekrit-path\x00?token=sekrit-query",
	} {
		_, err := CheckURL(in)
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("the error for %q shows a part of the URL: %v", in, err)
		}
	}
}

// FuzzCheckURL: CheckURL never panics; what it accepts is an absolute
// http(s) URL with a host name and without user info or fragment, accepted
// again as it prints; an error never shows a query.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/x?token=abc", "http://127.0.0.1:8080/", "http://[fe80::1%25eth0]/",
		"https://user:pass@h/", "ftp://x/", "https://h:/", "https://h/#f", "https:h", "", " https://h/",
		"http://[::ffff:10.0.0.1]:80/p", "https://h/%zz", "HTTP://H/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CheckURL(raw)
		if err == nil {
			if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
				t.Fatalf("%q accepted as %#v", raw, u)
			}
			if _, err := CheckURL(u.String()); err != nil {
				t.Fatalf("%q accepted, its printed form %q not: %v", raw, u, err)
			}
		}
		if strings.ContainsAny(raw, "#") {
			return // the query would be part of the fragment
		}
		const marker = "QQsekritQQ"
		if _, err := CheckURL(raw + "?t=" + marker); err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("the error for %q shows the query: %v", raw, err)
		}
	})
}
