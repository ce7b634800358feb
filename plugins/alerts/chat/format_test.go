package chat

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	shopLink = "https://shop.apps.example.com"
	shopData = `"app_name":"shop","subdomain":"shop.apps.example.com"`
	commit   = `"deployment_id":42,"commit_sha":"3F9C2AB8D1E4F00D","commit_message":"Fix the checkout redirect\n\nA longer body.","branch":"main"`
)

// TestFormatGolden holds every event type's message to its exact text.
func TestFormatGolden(t *testing.T) {
	tests := []struct {
		typ, data string
		want      string
	}{
		{event.DeploymentSucceeded, `{` + shopData + `,` + commit + `}`,
			"✅ Deployment succeeded — shop\nCommit 3F9C2AB on main: Fix the checkout redirect\n" + shopLink},
		{event.DeploymentFailed, `{` + shopData + `,` + commit + `,"error":"build failed: exit status 1\nstep 3/7","url":"https://shop.example.org/"}`,
			"❌ Deployment failed — shop\nCommit 3F9C2AB on main: Fix the checkout redirect\nError: build failed: exit status 1\nhttps://shop.example.org/"},
		{event.DeploymentFailed, `{"deployment_id":42,"error":"build failed: exit status 1"}`,
			"❌ Deployment failed\nDeployment #42\nError: build failed: exit status 1"},
		{event.DeploymentFailed, `{"app_name":"shop","deployment_id":7,"branch":"release/2.0","error":"\n\n  clone: https://ci:t0ken@git.example.com/shop.git: not found"}`,
			"❌ Deployment failed — shop\nDeployment #7 of release/2.0\nError: clone: https://[redacted]@git.example.com/shop.git: not found"},
		{event.DeploymentSucceeded, `{"app_name":"shop","commit_sha":"abc","branch":"main"}`,
			"✅ Deployment succeeded — shop\nCommit abc on main"},
		{event.DeploymentSucceeded, `{"app_name":"shop","branch":"main"}`,
			"✅ Deployment succeeded — shop\nBranch main"},
		{event.DeploymentSucceeded, `{"app_name":"shop","commit_message":"only a message"}`,
			"✅ Deployment succeeded — shop\nCommit: only a message"},
		{event.AppStopped, `{` + shopData + `,"reason":"stopped by its owner"}`,
			"⏹️ App stopped — shop\nReason: stopped by its owner\n" + shopLink},
		{event.AppStopped, `{` + shopData + `}`, "⏹️ App stopped — shop\n" + shopLink},
		{event.AppViolation, `{` + shopData + `,"reason":"memory limit exceeded (512 MiB)"}`,
			"🚫 Limit violated — shop\nReason: memory limit exceeded (512 MiB)\n" + shopLink},
		{event.AppCrashloop, `{` + shopData + `,"restart_count":5,"reason":"exit code 137"}`,
			"🔁 App crash-looping — shop\nRestarted 5 times\nReason: exit code 137\n" + shopLink},
		{event.AppCrashloop, `{"app_name":"shop","restart_count":1}`, "🔁 App crash-looping — shop\nRestarted once"},
		{event.AppCPU, `{"app_name":"shop","value":97.46,"threshold":90,"reason":"CPU at 97.5 %, threshold 90.0 %, sustained 5 min"}`,
			"🔥 CPU high — shop\nCPU at 97.5% (threshold 90%)"},
		{event.AppMemory, `{"app_name":"shop","value":91.04,"threshold":85}`, "🧠 Memory high — shop\nMemory at 91% (threshold 85%)"},
		{event.AppNetwork, `{"app_name":"shop","value":120.25,"threshold":100}`,
			"🌐 Network high — shop\nNetwork at 120.3 Mbit/s (threshold 100 Mbit/s)"},
		{event.AppDisk, `{"app_name":"shop","value":55.5,"threshold":50}`, "💾 Disk I/O high — shop\nDisk I/O at 55.5 MB/s (threshold 50 MB/s)"},
		{event.AppOffline, `{` + shopData + `,"value":312.4,"threshold":5,"reason":"its worker has not been heard from for 312 s (window 5 min)"}`,
			"📴 App offline — shop\nNo heartbeat from its worker for 5m12s\n" + shopLink},
		{event.AppCPUResolved, `{"app_name":"shop","value":42,"threshold":90}`, "🟢 CPU back to normal — shop\nCPU at 42% (threshold 90%)"},
		{event.AppMemoryResolved, `{"app_name":"shop","value":40.04,"threshold":85}`, "🟢 Memory back to normal — shop\nMemory at 40% (threshold 85%)"},
		{event.AppNetworkResolved, `{"app_name":"shop","value":0.04,"threshold":100}`,
			"🟢 Network back to normal — shop\nNetwork at 0 Mbit/s (threshold 100 Mbit/s)"},
		{event.AppDiskResolved, `{"app_name":"shop","value":1.25,"threshold":50}`, "🟢 Disk I/O back to normal — shop\nDisk I/O at 1.3 MB/s (threshold 50 MB/s)"},
		{event.AppOfflineResolved, `{` + shopData + `,"value":2}`, "🟢 App back online — shop\n" + shopLink},
		{event.AccountLoginNewDevice, `{"ip":"203.0.113.7"}`, "🔐 New device signed in"},
		{event.WebhookTest, ``, "🔔 Test notification\nA test message from WiseHosting: this chat target works."},

		// Metric alerts without numbers show their reason.
		{event.AppCPU, `{"app_name":"shop","reason":"CPU at 97.5 %, threshold 90.0 %\nsustained 5 min"}`,
			"🔥 CPU high — shop\nCPU at 97.5 %, threshold 90.0 %"},
		{event.AppOffline, `{"app_name":"shop","reason":"its worker is gone"}`, "📴 App offline — shop\nits worker is gone"},
		// Types outside the catalogue.
		{"app.restarted", `{` + shopData + `,"reason":"manual restart","error":"none"}`,
			"📣 app.restarted — shop\nReason: manual restart\nError: none\n" + shopLink},
		{"evil\x1b[31m.type\u202e", `{}`, "📣 evil[31m.type"},
		{"", `{}`, "📣 Event"},
		// Odd data.
		{event.AppViolation, `not json`, "🚫 Limit violated"},
		{event.AppViolation, `[1,2]`, "🚫 Limit violated"},
		{event.AppViolation, `{"app_name":5,"reason":"too many processes","restart_count":"x"}`, "🚫 Limit violated\nReason: too many processes"},
		{event.AppStopped, `{"app_name":"  sh\top\u0000\u200f ","url":"javascript:alert(1)","subdomain":"shop"}`, "⏹️ App stopped — sh op"},
		{event.AppStopped, `{"app_name":"shop","url":"https://user:pw@shop.example.org","subdomain":"Shop.Example.org"}`, "⏹️ App stopped — shop"},
		{event.AppStopped, `{"app_name":"shop","url":"https://shop.example.org/a b","subdomain":"shop.example.org"}`,
			"⏹️ App stopped — shop\nhttps://shop.example.org"},
		{event.AppStopped, `{"app_name":"👩‍💻 dev","url":"ftp://shop.example.org"}`, "⏹️ App stopped — 👩‍💻 dev"},
		{event.AppStopped, `{"app_name":"shop","url":"https://:8080/x"}`, "⏹️ App stopped — shop"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got := formatMessage(&pluginv1.Event{Id: "e", Type: tt.typ, DataJson: []byte(tt.data)}).text()
			if got != tt.want {
				t.Errorf("\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// TestTablesCoverCatalogue: every event the core emits has its own emoji
// and title; resolutions read as such.
func TestTablesCoverCatalogue(t *testing.T) {
	titles := map[string]string{}
	for _, typ := range event.All() {
		emoji, title := eventEmoji(typ), eventTitle(typ)
		if emoji == eventEmoji("no.such.type") || title == typ {
			t.Errorf("%s falls back to the generic emoji or title (%s %s)", typ, emoji, title)
		}
		if other, dup := titles[title]; dup {
			t.Errorf("%s and %s share the title %q", typ, other, title)
		}
		titles[title] = typ
		if strings.HasSuffix(typ, ".resolved") != (strings.Contains(title, "back") || strings.Contains(title, "normal")) {
			t.Errorf("%s: title %q", typ, title)
		}
	}
}

// TestMessageBounds: whatever an event holds, its message stays within
// every service's limit, one line per part, without control characters.
func TestMessageBounds(t *testing.T) {
	if maxMessageRunes != 938 {
		t.Fatalf("maxMessageRunes is %d: update the package comment and schema/config.md, which say 938", maxMessageRunes)
	}
	huge := strings.Repeat("𝔘\u0000\x1b\u202e", 5000)
	data := `{"app_name":"` + huge + `","subdomain":"` + huge + `","url":"https://` + strings.Repeat("a", 5000) + `.example.com",` +
		`"commit_sha":"` + huge + `","commit_message":"` + huge + `","branch":"` + huge + `","error":"` + huge + `","reason":"` + huge + `",` +
		`"restart_count":99999999,"value":1e300,"threshold":-1e300,"deployment_id":9223372036854775807}`
	types := append(event.All(), huge, "x")
	for _, typ := range types {
		m := formatMessage(&pluginv1.Event{Type: typ, DataJson: []byte(data)})
		text := m.text()
		if n := utf8.RuneCountInString(text); n > maxMessageRunes {
			t.Errorf("%.20q: %d runes, more than %d", typ, n, maxMessageRunes)
		}
		if n := len(utf16.Encode([]rune(text))); n > 2000 {
			t.Errorf("%.20q: %d UTF-16 units, more than Discord's 2000", typ, n)
		}
		if len(m.details) > maxDetails || strings.Count(text, "\n") > maxDetails+1 {
			t.Errorf("%.20q: %d details", typ, len(m.details))
		}
		for _, line := range strings.Split(text, "\n") {
			if line == "" {
				t.Errorf("%.20q: an empty line in %q", typ, text)
			}
			for _, r := range line {
				if unicode.IsControl(r) || r == '\u202e' {
					t.Fatalf("%.20q: control character %U in %q", typ, r, line)
				}
			}
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"  a \t b  ", 10, "a b"},
		{"\n\r\n first \r second", 20, "first"},
		{"abcdefghij", 5, "abcd…"},
		{"éééééé", 3, "éé…"},
		{"bad \xff utf8", 20, "bad \uFFFD utf8"},
		{"rtl\u202eoverride\u2066", 20, "rtloverride"},
		{"a\u2028b", 10, "a b"},
		{"see https://u:p@h.example.com/x and ftp://a@b", 80, "see https://[redacted]@h.example.com/x and ftp://[redacted]@b"},
		{"https://h.example.com/@user", 40, "https://h.example.com/@user"},
		{"mail me@example.com", 40, "mail me@example.com"},
	}
	for _, tt := range tests {
		if got := clean(tt.in, tt.max); got != tt.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestShortAndFirstLine(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "abc": "abc", "3f9c2ab8d1e4": "3f9c2ab", " 3f9c2ab8d1e4\n": "3f9c2ab", strings.Repeat("a", 100): "aaaaaaa",
	} {
		if got := short(in); got != want {
			t.Errorf("short(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"": "", "one": "one", "one\ntwo": "one", "\n\n  two  \nthree": "two", "a\r\nb": "a", "a\rb": "a", " \t ": "",
	} {
		if got := firstLine(in); got != want {
			t.Errorf("firstLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessageParts(t *testing.T) {
	m := message{headline: "h", details: []string{"a", "b"}, link: "https://x.example.com"}
	if m.text() != "h\na\nb\nhttps://x.example.com" || m.body() != "a\nb\nhttps://x.example.com" {
		t.Errorf("text %q body %q", m.text(), m.body())
	}
	if m := (message{headline: "h"}); m.text() != "h" || m.body() != "" {
		t.Errorf("text %q body %q", m.text(), m.body())
	}
}
