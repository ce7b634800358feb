package email

import (
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/mail"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Every event of the catalogue has its own emoji and title.
func TestDescribeCatalogue(t *testing.T) {
	titles := map[string]string{}
	for _, typ := range event.All() {
		emoji, title := describe(typ)
		if emoji == "🔔" || strings.HasPrefix(title, "Event ") {
			t.Errorf("%s has no entry in describe", typ)
		}
		if other, dup := titles[title]; dup {
			t.Errorf("%s and %s share the title %q", typ, other, title)
		}
		titles[title] = typ
	}
	if emoji, title := describe("custom.thing"); emoji != "🔔" || title != "Event custom.thing" {
		t.Errorf("unknown type: %q %q", emoji, title)
	}
}

func TestCompose(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name       string
		ev         *pluginv1.Event
		prefix     string
		subject    string
		text, html []string // parts each must hold
		notHTML    []string // parts the HTML must not hold
	}{
		{
			name:    "threshold alert",
			ev:      &pluginv1.Event{Id: "1", Type: event.AppCPU, DataJson: []byte(`{"app_name":"api","value":97.5,"threshold":90,"reason":"CPU at 97.5 %, threshold 90.0 %","url":"https://api.example.com/"}`)},
			prefix:  "[WiseHosting]",
			subject: "[WiseHosting] 🔥 High CPU usage — api",
			text:    []string{"Value:  97.5 (threshold 90)", "Reason: CPU at 97.5 %", "Open: https://api.example.com/", "at 2026-05-06 07:08:09 UTC"},
			html:    []string{`href="https://api.example.com/"`, "97.5 (threshold 90)"},
		},
		{
			name:    "resolved, no prefix, app by id",
			ev:      &pluginv1.Event{Id: "2", Type: event.AppOfflineResolved, AppId: 42},
			subject: "🟢 App back online — app #42",
			text:    []string{"App: app #42"},
		},
		{
			name:    "no app",
			ev:      &pluginv1.Event{Id: "3", Type: event.WebhookTest},
			prefix:  "[X]",
			subject: "[X] 🧪 Test notification",
		},
		{
			name: "escaping and hostile values",
			ev: &pluginv1.Event{Id: "4", Type: event.DeploymentFailed, DataJson: []byte(`{"app_name":"<script>alert(1)</script>\u202e\r\nBcc: x",` +
				`"url":"javascript:alert(1)","subdomain":"evil\"><b>","error":"line 1\n<img src=x onerror=alert(1)>\n\n","branch":"a&b"}`)},
			subject: "❌ Deployment failed — <script>alert(1)</script> Bcc: x",
			text:    []string{"Error:\n    line 1\n    <img src=x onerror=alert(1)>\n", "url:", "javascript:alert(1)"},
			html:    []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "a&amp;b", "evil&#34;&gt;&lt;b&gt;"},
			notHTML: []string{"<script>", "<img", `href="javascript`, "\u202e", "<b>"},
		},
		{
			name:    "commit",
			ev:      &pluginv1.Event{Id: "5", Type: event.DeploymentSucceeded, DataJson: []byte(`{"app_name":"shop","commit_sha":"ABCDEF0123456789","commit_message":"\n\n  Add cart  \nbody","branch":"main","deployment_id":12}`)},
			subject: "✅ Deployment succeeded — shop",
			text:    []string{"Commit:     ABCDEF0 Add cart\n", "Branch:     main", "Deployment: #12"},
		},
		{
			name:    "bad sha is left out",
			ev:      &pluginv1.Event{Id: "6", Type: event.DeploymentSucceeded, DataJson: []byte(`{"commit_sha":"<not hex>","commit_message":"msg"}`)},
			subject: "✅ Deployment succeeded",
			text:    []string{"Commit: msg\n"},
		},
		{
			name:    "other fields and odd types",
			ev:      &pluginv1.Event{Id: "7", Type: event.AccountLoginNewDevice, DataJson: []byte(`{"ip":"203.0.113.7","city":"Lyon","value":"high","nested":{"a":[1, 2]},"restart_count":3}`)},
			subject: "🔐 New sign-in from an unknown device",
			text:    []string{"city:     Lyon", "ip:       203.0.113.7", "nested:   {\"a\":[1,2]}", "value:    high", "Restarts: 3"},
		},
		{
			name:    "subdomain link",
			ev:      &pluginv1.Event{Id: "8", Type: event.AppCrashloop, DataJson: []byte(`{"app_name":"w","subdomain":"w.apps.example.com","restart_count":5}`)},
			subject: "🔁 App crash-looping — w",
			text:    []string{"Open: https://w.apps.example.com", "Restarts: 5"},
		},
	}
	tmpl := newHTMLTemplate()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compose(tt.ev, tt.prefix, tmpl, now)
			if err != nil {
				t.Fatal(err)
			}
			if c.subject != tt.subject {
				t.Errorf("subject %q, want %q", c.subject, tt.subject)
			}
			if !c.at.Equal(now) {
				t.Errorf("at %v", c.at)
			}
			for _, want := range tt.text {
				if !strings.Contains(c.text, want) {
					t.Errorf("the text lacks %q:\n%s", want, c.text)
				}
			}
			for _, want := range tt.html {
				if !strings.Contains(c.html, want) {
					t.Errorf("the HTML lacks %q:\n%s", want, c.html)
				}
			}
			for _, bad := range tt.notHTML {
				if strings.Contains(c.html, bad) {
					t.Errorf("the HTML holds %q:\n%s", bad, c.html)
				}
			}
			// It makes a valid mail.
			m := mail.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: c.subject, Text: c.text, HTML: c.html}
			if _, err := m.Bytes(); err != nil {
				t.Errorf("the mail does not render: %v", err)
			}
		})
	}
}

func TestComposeLimits(t *testing.T) {
	long := strings.Repeat("é", 5000)
	var fields []string
	for i := range 30 {
		fields = append(fields, `"f`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":"v"`)
	}
	ev := &pluginv1.Event{Id: "1", Type: event.DeploymentFailed,
		DataJson: []byte(`{"app_name":"` + long + `","error":"` + long + `",` + strings.Join(fields, ",") + `}`)}
	c, err := compose(ev, "", newHTMLTemplate(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.subject) > 200 || !strings.HasSuffix(c.subject, "…") {
		t.Errorf("subject of %d bytes: %q", len(c.subject), c.subject)
	}
	if !strings.Contains(c.text, "10 more fields") || strings.Count(c.text, ": v\n") != maxExtra {
		t.Errorf("extra fields:\n%s", c.text)
	}
	if len(c.text) > maxError+maxApp+3000 {
		t.Errorf("text of %d bytes", len(c.text))
	}
}

// FuzzCompose checks that any event data renders into a mail sdk/mail
// accepts, without raw markup from the data in the HTML.
func FuzzCompose(f *testing.F) {
	f.Add("deployment.failed", []byte(`{"app_name":"shop","error":"boom","commit_sha":"abc","commit_message":"x\ny"}`))
	f.Add("app.cpu", []byte(`{"value":1e308,"threshold":-0,"url":"https://x.example.com"}`))
	f.Add("x\r\ny", []byte(`{"<b>":"<i>","url":"javascript:x","subdomain":"a.b"}`))
	f.Add("", []byte(`{"app_name":"\u202e\u0000","error":"\r\r\n"}`))
	f.Add("app.disk", []byte(`null`))
	tmpl := newHTMLTemplate()
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		ev := &pluginv1.Event{Id: "fuzz", Type: typ, DataJson: data, AppId: 3}
		c, err := compose(ev, DefaultSubjectPrefix, tmpl, time.Unix(0, 0))
		if err != nil {
			return // not a JSON object
		}
		m := mail.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: c.subject, Text: c.text, HTML: c.html}
		if _, err := m.Bytes(); err != nil {
			t.Fatalf("subject %q: %v", c.subject, err)
		}
		if strings.Contains(c.html, "<b>") || strings.Contains(c.html, "<i>") {
			t.Fatalf("raw markup in the HTML:\n%s", c.html)
		}
		for _, part := range strings.Split(c.html, `href="`)[1:] {
			if !strings.HasPrefix(part, "http://") && !strings.HasPrefix(part, "https://") {
				t.Fatalf("a link that is not http(s): %.60q", part)
			}
		}
	})
}
