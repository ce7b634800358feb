package events

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		sink    string
		webhook int64
		ok      bool
	}{
		{"sink:ops", "ops", 0, true},
		{"sink:team.chat-1", "team.chat-1", 0, true},
		{"webhook:42", "", 42, true},
		{"sink:", "", 0, false},
		{"webhook:", "", 0, false},
		{"webhook:0", "", 0, false},
		{"webhook:-3", "", -3, false},
		{"webhook:9223372036854775808", "", 0, false},
		{"webhook:1x", "", 0, false},
		{"ops", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		sink, hook, ok := parseTarget(tt.in)
		if ok != tt.ok || ok && (sink != tt.sink || hook != tt.webhook) {
			t.Errorf("parseTarget(%q) = %q, %d, %v; want %q, %d, %v", tt.in, sink, hook, ok, tt.sink, tt.webhook, tt.ok)
		}
	}
}

// FuzzParseTarget: every target the dispatcher writes reads back as itself,
// and no input makes the parser accept a sink and a webhook at once.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"sink:ops", "webhook:7", "webhook:", "sink:", "x"} {
		f.Add(s, int64(7))
	}
	f.Fuzz(func(t *testing.T, s string, id int64) {
		sink, hook, ok := parseTarget(s)
		if ok && (sink == "") == (hook == 0) {
			t.Fatalf("parseTarget(%q) = %q, %d: want exactly one of them", s, sink, hook)
		}
		if ok && sink != "" && sinkPrefix+sink != s {
			t.Fatalf("sink %q does not read back as %q", sink, s)
		}
		if id > 0 {
			if _, got, ok := parseTarget(webhookTarget(id)); !ok || got != id {
				t.Fatalf("webhook %d read back as %d, %v", id, got, ok)
			}
		}
		if name := strings.TrimSpace(s); name != "" && !strings.ContainsAny(name, ":") {
			if got, _, ok := parseTarget(sinkPrefix + name); !ok || got != name {
				t.Fatalf("sink %q read back as %q, %v", name, got, ok)
			}
		}
	})
}

func TestWithAppURL(t *testing.T) {
	tests := []struct {
		data, domain, want string
	}{
		{`{"app_name":"shop","subdomain":"shop-1"}`, "apps.example.com", `{"app_name":"shop","subdomain":"shop-1","url":"https://shop-1.apps.example.com"}`},
		{`{"subdomain":"shop","url":"https://shop.example.org"}`, "apps.example.com", `{"subdomain":"shop","url":"https://shop.example.org"}`},
		{`{"app_name":"shop"}`, "apps.example.com", `{"app_name":"shop"}`},
		{`{"subdomain":"shop"}`, "", `{"subdomain":"shop"}`},
		{`{"subdomain":"Bad_Label"}`, "apps.example.com", `{"subdomain":"Bad_Label"}`},
		{`{"subdomain":"a.b"}`, "apps.example.com", `{"subdomain":"a.b"}`},
		{`{"subdomain":7}`, "apps.example.com", `{"subdomain":7}`},
		{`{"subdomain":""}`, "apps.example.com", `{"subdomain":""}`},
		{`not json "subdomain"`, "apps.example.com", `not json "subdomain"`},
	}
	for _, tt := range tests {
		if got := string(withAppURL([]byte(tt.data), tt.domain)); got != tt.want {
			t.Errorf("withAppURL(%s, %q) = %s, want %s", tt.data, tt.domain, got, tt.want)
		}
	}
}
