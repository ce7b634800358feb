package chat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/outbound"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// newReceiver starts a chat service stand-in on 127.0.0.1: it records
// every request and answers 200 "ok", or as SetRespond says.
func newReceiver(t *testing.T) *outboundtest.Receiver {
	t.Helper()
	rc := outboundtest.Start(t, nil)
	rc.SetRespond(outboundtest.Reply(http.StatusOK, nil, "ok"))
	return rc
}

// config returns a config body for url, allowing private addresses (every
// test endpoint is on loopback), plus extra lines.
func config(url string, extra ...string) string {
	return strings.Join(append([]string{fmt.Sprintf("url = %q", url), "allow_private = true"}, extra...), "\n")
}

// newTestPlugin returns a plugin configured with src, logging JSON into
// the returned buffer.
func newTestPlugin(t *testing.T, src string) (*Plugin, *plugintest.LogBuffer) {
	return plugintest.ConfigureNew(t, newWithLogger, Spec(), src)
}

// failedDeployment is the event of the delivery tests, and testText its
// message.
func failedDeployment(id string) *pluginv1.Event {
	return &pluginv1.Event{Id: id, Type: "deployment.failed", TimeUnixNano: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano(),
		UserId: 7, AppId: 42, Attempt: 1, DataJson: []byte(`{"app_name":"shop","subdomain":"shop.apps.example.com",` +
			`"commit_sha":"3f9c2ab8d1","commit_message":"Fix <it>\n\nbody","branch":"main","error":"build failed"}`)}
}

const (
	testHeadline = "❌ Deployment failed — shop"
	testBody     = `Commit 3f9c2ab on main: Fix <it>\nError: build failed\nhttps://shop.apps.example.com`
	testText     = testHeadline + `\n` + testBody // as in JSON
)

func TestInfo(t *testing.T) { plugintest.CheckInfo(t, New(), sdk.KindAlerts, Name, Version) }

func TestConfigure(t *testing.T) {
	discord := "discord://" + discordToken + "@" + discordID
	tests := []struct {
		name, hcl, wantErr string
		check              func(t *testing.T, s *settings)
	}{
		{name: "minimal", hcl: fmt.Sprintf("url = %q", discord), check: func(t *testing.T, s *settings) {
			if s.timeout != DefaultTimeout || s.limit.Cap() != DefaultMaxConcurrency {
				t.Errorf("defaults: timeout %v, concurrency %d", s.timeout, s.limit.Cap())
			}
			if s.base.String() != "https://discord.com" || s.endpoint != "https://discord.com" || s.target.service != "discord" {
				t.Errorf("base %v, endpoint %q, service %q", s.base, s.endpoint, s.target.service)
			}
			if tr := s.client.Transport.(*http.Transport); tr.Proxy != nil {
				t.Error("the transport uses a proxy")
			}
			if len(s.redact) == 0 || s.redact[0] != discordToken {
				t.Errorf("redact %q", s.redact)
			}
		}},
		{name: "everything", hcl: config(discord, `timeout = "250ms"`, "max_concurrency = 2", `base_url = "http://127.0.0.1:8080/relay/"`),
			check: func(t *testing.T, s *settings) {
				if s.timeout != 250*time.Millisecond || s.limit.Cap() != 2 {
					t.Errorf("timeout %v, concurrency %d", s.timeout, s.limit.Cap())
				}
				if s.base.String() != "http://127.0.0.1:8080/relay" || s.endpoint != "http://127.0.0.1:8080" {
					t.Errorf("base %v, endpoint %q", s.base, s.endpoint)
				}
			}},
		{name: "public literal address", hcl: `url = "ntfy://203.0.113.7:8080/alerts"`},
		{name: "public IPv6 literal in base_url", hcl: fmt.Sprintf("url = %q\nbase_url = %q", discord, "https://[2001:db8::1]")},
		{name: "localhost passes Configure (the dial guard judges names)", hcl: `url = "ntfy://localhost:9/alerts?scheme=http"`},
		{name: "a private url host does not matter when base_url replaces it", hcl: `url = "ntfy://10.0.0.1/alerts"` + "\n" + `base_url = "https://relay.example.com"`},

		{name: "no url", hcl: `timeout = "1s"`, wantErr: `"url" is required`},
		{name: "empty url", hcl: `url = ""`, wantErr: "url is required"},
		{name: "bad url", hcl: fmt.Sprintf("url = %q", "discord://"+discordToken+"@"+discordID+"/S3KRIT"), wantErr: "url: discord: the URL has a path"},
		{name: "unknown scheme", hcl: `url = "https://hooks.example.com/S3KRIT"`, wantErr: `unsupported scheme "https"`},
		{name: "timeout not a duration", hcl: config(discord, `timeout = "soon"`), wantErr: "timeout: invalid duration"},
		{name: "timeout too short", hcl: config(discord, `timeout = "10ms"`), wantErr: `timeout = "10ms": must be between 100ms and 5m`},
		{name: "concurrency 0", hcl: config(discord, "max_concurrency = 0"), wantErr: "max_concurrency = 0: must be between 1 and 64"},
		{name: "concurrency 65", hcl: config(discord, "max_concurrency = 65"), wantErr: "max_concurrency = 65"},
		{name: "base_url ftp", hcl: config(discord, `base_url = "ftp://relay.example.com"`), wantErr: "base_url: the scheme must be http or https"},
		{name: "base_url relative", hcl: config(discord, `base_url = "/relay"`), wantErr: "base_url: the scheme must be"},
		{name: "base_url without host", hcl: config(discord, `base_url = "http:///x"`), wantErr: "base_url must be absolute"},
		{name: "base_url with user info", hcl: config(discord, `base_url = "https://u:S3KRIT@relay.example.com"`), wantErr: "must not hold a user name or password"},
		{name: "base_url with a query", hcl: config(discord, `base_url = "https://relay.example.com/?k=S3KRIT"`), wantErr: "must not have a query"},
		{name: "base_url with an empty query", hcl: config(discord, `base_url = "https://relay.example.com/?"`), wantErr: "must not have a query"},
		{name: "base_url with a fragment", hcl: config(discord, `base_url = "https://relay.example.com/#S3KRIT"`), wantErr: "fragment"},
		{name: "base_url bad port", hcl: config(discord, `base_url = "https://relay.example.com:0"`), wantErr: "port"},
		{name: "base_url empty port", hcl: config(discord, `base_url = "https://relay.example.com:"`), wantErr: "empty port"},
		{name: "base_url white space", hcl: config(discord, `base_url = " https://relay.example.com"`), wantErr: "white space"},
		{name: "base_url unparsable", hcl: config(discord, `base_url = "https://relay.example.com/%zzS3KRIT"`), wantErr: "base_url is not a valid URL: invalid URL escape"},
		{name: "loopback base_url", hcl: fmt.Sprintf("url = %q\nbase_url = %q", discord, "http://127.0.0.1:8080"),
			wantErr: "base_url: 127.0.0.1 is a loopback address; set allow_private = true"},
		{name: "metadata base_url", hcl: fmt.Sprintf("url = %q\nbase_url = %q", discord, "http://169.254.169.254"), wantErr: "link-local"},
		{name: "private ntfy server", hcl: `url = "ntfy://10.1.2.3/alerts"`, wantErr: "url: 10.1.2.3 is a private address; set allow_private = true"},
		{name: "IPv6 loopback gotify server", hcl: `url = "gotify://[::1]:8080/` + gotifyToken + `"`, wantErr: "url: ::1 is a loopback address"},
		{name: "mapped loopback generic", hcl: `url = "generic+http://[::ffff:127.0.0.1]/hook"`, wantErr: "loopback"},
		{name: "link-local with zone", hcl: `url = "generic+http://[fe80::1%25eth0]/hook"`, wantErr: "link-local"},
		{name: "CGNAT", hcl: `url = "ntfy://100.64.1.1/alerts"`, wantErr: "carrier-grade NAT"},
		{name: "private with allow_private = false", hcl: `url = "ntfy://192.168.0.10/alerts"` + "\nallow_private = false", wantErr: "private"},
		{name: "unknown attribute", hcl: config(discord, `secret = "x"`), wantErr: "Unsupported argument"},
		{name: "wrong type", hcl: `url = ["x"]`, wantErr: "string required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := plugintest.JSONLogger()
			p := newWithLogger(l)
			err := plugintest.Configure(p, Spec(), tt.hcl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if p.settings.Load() != nil {
					t.Error("a rejected config left settings behind")
				}
				for _, s := range []string{"S3KRIT", discordToken} {
					if strings.Contains(err.Error(), s) || strings.Contains(buf.String(), s) {
						t.Fatalf("the error or log shows a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, p.settings.Load())
			}
		})
	}
}

// TestReconfigure: a rejected config leaves the previous one in force; an
// accepted one replaces it.
func TestReconfigure(t *testing.T) {
	p, _ := newTestPlugin(t, `url = "ntfy://a.example.com/alerts"`)
	if err := plugintest.Configure(p, Spec(), `url = "ntfy://b.example.com"`); err == nil {
		t.Fatal("an ntfy URL without a topic was accepted")
	}
	if got := p.settings.Load().endpoint; got != "https://a.example.com" {
		t.Fatalf("endpoint after a rejected config: %q", got)
	}
	if err := plugintest.Configure(p, Spec(), "url = \"discord://tok@1\"\nmax_concurrency = 3"); err != nil {
		t.Fatal(err)
	}
	if s := p.settings.Load(); s.target.service != "discord" || s.limit.Cap() != 3 {
		t.Fatalf("service %q, concurrency %d", s.target.service, s.limit.Cap())
	}
}

// TestDeliverPerScheme sends the same event through every service to a
// receiver on loopback, reached through base_url or the URL's own host,
// and checks each request: method, path and query, headers, body.
func TestDeliverPerScheme(t *testing.T) {
	type want struct {
		uri    string
		header map[string]string // "" means absent
		body   string
	}
	jsonCT := "application/json"
	tests := []struct {
		name, url, baseURL string // in url and baseURL, ADDR is the receiver's 127.0.0.1:port
		want               []want
		msg                string
	}{
		{name: "discord", url: "discord://" + discordToken + "@" + discordID + "?thread_id=9&username=Wise", baseURL: "http://ADDR",
			want: []want{{uri: "/api/webhooks/" + discordID + "/" + discordToken + "?thread_id=9", header: map[string]string{"Content-Type": jsonCT},
				body: `{"allowed_mentions":{"parse":[]},"content":"` + testText + `","username":"Wise"}`}},
			msg: "discord answered 200 OK"},
		{name: "discord through a relay path", url: "discord://" + discordToken + "@" + discordID, baseURL: "http://ADDR/relay/",
			want: []want{{uri: "/relay/api/webhooks/" + discordID + "/" + discordToken, header: map[string]string{"Content-Type": jsonCT},
				body: `{"allowed_mentions":{"parse":[]},"content":"` + testText + `"}`}}},
		{name: "slack", url: "slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook", baseURL: "http://ADDR",
			want: []want{{uri: "/services/" + slackA + "/" + slackB + "/" + slackC, header: map[string]string{"Content-Type": jsonCT},
				body: `{"text":"` + testHeadline + `\nCommit 3f9c2ab on main: Fix &lt;it&gt;\nError: build failed\nhttps://shop.apps.example.com"}`}},
			msg: "slack answered 200 OK"},
		{name: "ntfy on its own host", url: "ntfy://alice:pa55S3KRIT@ADDR/alerts?scheme=http&priority=high&tags=warning",
			want: []want{{uri: "/alerts", header: map[string]string{"Content-Type": "text/plain; charset=utf-8",
				"Authorization": basic("alice", "pa55S3KRIT"), "Priority": "4", "Tags": "warning", "Click": "https://shop.apps.example.com"},
				body: strings.ReplaceAll(testText, `\n`, "\n")}},
			msg: "ntfy answered 200 OK"},
		{name: "ntfy with a token through base_url", url: "ntfy://ntfy.example.com/alerts?token=tk_S3KRIT", baseURL: "http://ADDR",
			want: []want{{uri: "/alerts", header: map[string]string{"Authorization": "Bearer tk_S3KRIT", "Priority": ""},
				body: strings.ReplaceAll(testText, `\n`, "\n")}}},
		{name: "telegram", url: "telegram://" + telegramToken + "@telegram?chats=@ops,-100123&notification=no", baseURL: "http://ADDR",
			want: []want{
				{uri: "/bot" + telegramToken + "/sendMessage", header: map[string]string{"Content-Type": jsonCT},
					body: `{"chat_id":"@ops","disable_notification":true,"text":"` + testText + `"}`},
				{uri: "/bot" + telegramToken + "/sendMessage", header: map[string]string{"Content-Type": jsonCT},
					body: `{"chat_id":-100123,"disable_notification":true,"text":"` + testText + `"}`},
			},
			msg: "telegram took it in all 2 chats"},
		{name: "gotify on its own host", url: "gotify://ADDR/sub/" + gotifyToken + "?disabletls=yes&priority=8",
			want: []want{{uri: "/sub/message", header: map[string]string{"Content-Type": jsonCT, "X-Gotify-Key": gotifyToken},
				body: `{"message":"` + testBody + `","priority":8,"title":"` + testHeadline + `"}`}},
			msg: "gotify answered 200 OK"},
		{name: "generic+http on its own host", url: "generic+http://ADDR/hook?team=ops&@X-Api-Key=S3KRITkey1&$source=wh",
			want: []want{{uri: "/hook?team=ops", header: map[string]string{"Content-Type": jsonCT, "X-Api-Key": "S3KRITkey1", "Authorization": ""},
				body: `{"message":"` + testText + `","source":"wh","title":"` + testHeadline + `"}`}},
			msg: "generic answered 200 OK"},
		{name: "generic+https through an http base_url", url: "generic+https://u:S3KRITpw@hooks.example.com/a/b?x=1", baseURL: "http://ADDR/r",
			want: []want{{uri: "/r/a/b?x=1", header: map[string]string{"Authorization": basic("u", "S3KRITpw")},
				body: `{"message":"` + testText + `","title":"` + testHeadline + `"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t)
			addr := rc.HostPort()
			extra := []string{}
			if tt.baseURL != "" {
				extra = append(extra, fmt.Sprintf("base_url = %q", strings.ReplaceAll(tt.baseURL, "ADDR", addr)))
			}
			p, _ := newTestPlugin(t, config(strings.ReplaceAll(tt.url, "ADDR", addr), extra...))
			r := plugintest.Deliver(t, p, failedDeployment("ev-1"))[0]
			if r.GetOutcome() != delivered || r.GetRetryAfterMs() != 0 {
				t.Fatalf("result %v", r)
			}
			if tt.msg != "" && r.GetMessage() != tt.msg {
				t.Errorf("message %q, want %q", r.GetMessage(), tt.msg)
			}
			hits := rc.Requests()
			if len(hits) != len(tt.want) {
				t.Fatalf("%d requests, want %d", len(hits), len(tt.want))
			}
			for i, w := range tt.want {
				h := hits[i]
				if h.Method != http.MethodPost || h.URI != w.uri {
					t.Errorf("request %d: %s %s, want POST %s", i, h.Method, h.URI, w.uri)
				}
				if got := h.Header.Get("User-Agent"); got != UserAgent {
					t.Errorf("request %d: User-Agent %q", i, got)
				}
				for k, v := range w.header {
					if got := h.Header.Get(k); got != v {
						t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
					}
				}
				if string(h.Body) != w.body {
					t.Errorf("request %d: body\n got: %s\nwant: %s", i, h.Body, w.body)
				}
			}
		})
	}
}

// TestTelegramChats: a message to several chats is delivered when every
// chat took it, fails when one failed for good, and is retried (to every
// chat) otherwise.
func TestTelegramChats(t *testing.T) {
	rc := newReceiver(t)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, body []byte) {
		switch {
		case bytes.Contains(body, []byte(`"@bad`)):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
		case bytes.Contains(body, []byte(`"@slow"`)):
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":429,"parameters":{"retry_after":7}}`)
		default:
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	})
	tests := []struct {
		chats string
		want  pluginv1.DeliveryOutcome
		after time.Duration
		msg   []string
	}{
		{"@a,@b", delivered, 0, []string{"telegram took it in all 2 chats"}},
		{"@a,@bad,@slow", failed, 0, []string{"chat @bad (2 of 3): telegram answered 400 Bad Request", "chat not found",
			"chat @slow (3 of 3): telegram answered 429", "1 of 3 delivered; failed"}},
		{"@a,@slow", retry, 7 * time.Second, []string{"chat @slow (2 of 2)", "retry after 7s", "1 of 2 delivered; retried, and the retry sends to every chat again"}},
		{"@bad1,@bad2,@bad3,@bad4,@bad5", failed, 0, []string{"chat @bad3 (3 of 5)", "2 more not delivered", "0 of 5 delivered"}},
	}
	for _, tt := range tests {
		t.Run(tt.chats, func(t *testing.T) {
			before := len(rc.Requests())
			p, _ := newTestPlugin(t, config("telegram://"+telegramToken+"@telegram?chats="+tt.chats, fmt.Sprintf("base_url = %q", rc.URL)))
			r := plugintest.Deliver(t, p, failedDeployment("ev-t"))[0]
			if r.GetOutcome() != tt.want || time.Duration(r.GetRetryAfterMs())*time.Millisecond != tt.after {
				t.Fatalf("result %v", r)
			}
			for _, m := range tt.msg {
				if !strings.Contains(r.GetMessage(), m) {
					t.Errorf("message %q lacks %q", r.GetMessage(), m)
				}
			}
			if strings.Contains(r.GetMessage(), "S3KRIT") {
				t.Fatalf("message %q shows the token", r.GetMessage())
			}
			n := strings.Count(tt.chats, ",") + 1
			if got := len(rc.Requests()) - before; got != n {
				t.Fatalf("%d requests for %d chats", got, n)
			}
			if tt.want == retry { // the retry sends to every chat again
				plugintest.Deliver(t, p, failedDeployment("ev-t"))
				if got := len(rc.Requests()) - before; got != 2*n {
					t.Fatalf("%d requests after the retry, want %d", got, 2*n)
				}
			}
		})
	}
}

// TestOutcomes maps a service's answers to results.
func TestOutcomes(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	huge := strings.Repeat("x", 100<<10)
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		want      pluginv1.DeliveryOutcome
		afterMin  time.Duration
		afterMax  time.Duration
		msg       []string
		msgAbsent []string
	}{
		{name: "200", status: 200, body: "ok", want: delivered, msg: []string{"discord answered 200 OK"}},
		{name: "204", status: 204, want: delivered, msg: []string{"204 No Content"}},
		{name: "unknown 2xx", status: 299, want: delivered, msg: []string{"answered 299"}},
		{name: "429 with seconds", status: 429, header: map[string]string{"Retry-After": "30"}, body: `{"retry_after": 5}`, want: retry,
			afterMin: 30 * time.Second, afterMax: 30 * time.Second, msg: []string{"429 Too Many Requests", "retry after 30s"}},
		{name: "429 with a date", status: 429, header: map[string]string{"Retry-After": date}, want: retry,
			afterMin: 85 * time.Second, afterMax: 90 * time.Second},
		{name: "429 with Discord's retry_after", status: 429, body: `{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}`,
			want: retry, afterMin: 2500 * time.Millisecond, afterMax: 2500 * time.Millisecond, msg: []string{"retry after 2.5s"}},
		{name: "429 with Telegram's retry_after", status: 429, body: `{"ok":false,"parameters":{"retry_after":12}}`,
			want: retry, afterMin: 12 * time.Second, afterMax: 12 * time.Second},
		{name: "429 with a huge retry_after", status: 429, body: `{"retry_after": 1e12}`, want: retry, afterMin: time.Hour, afterMax: time.Hour},
		{name: "429 without a delay", status: 429, want: retry},
		{name: "500", status: 500, body: "boom\x00\x1b[31m\nstack", want: retry,
			msg: []string{`500 Internal Server Error: "boom [31m stack"`}, msgAbsent: []string{"\x00", "\x1b", "\n"}},
		{name: "503 with a long Retry-After", status: 503, header: map[string]string{"Retry-After": "7200"}, want: retry,
			afterMin: time.Hour, afterMax: time.Hour, msg: []string{"retry after 1h0m0s"}},
		{name: "503 ignores a body delay", status: 503, body: `{"retry_after": 5}`, want: retry},
		{name: "408", status: 408, want: retry, msg: []string{"408 Request Timeout"}},
		{name: "400", status: 400, body: `{"message":"Cannot send an empty message","code":50006}`, want: failed,
			msg: []string{`400 Bad Request: "{ message : Cannot send an empty message , code :50006}"; not retried`}},
		{name: "401", status: 401, want: failed, msg: []string{"401 Unauthorized", "check the url's token"}},
		{name: "404", status: 404, body: `{"message": "Unknown Webhook", "code": 10015}`, want: failed, msg: []string{"Unknown Webhook", "check the url's token"}},
		{name: "410", status: 410, body: "channel_is_archived", want: failed, msg: []string{"410 Gone", "channel_is_archived", "not retried"}},
		{name: "huge body is cut", status: 400, body: huge, want: failed, msg: []string{"xxx…"}},
		{name: "301", status: 301, header: map[string]string{"Location": "https://discord.com/new"}, want: failed,
			msg: []string{"301 Moved Permanently", `a redirect to "https://discord.com/new"`, "redirects are not followed"}},
		{name: "307", status: 307, want: failed, msg: []string{"307 Temporary Redirect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.SetRespond(outboundtest.Reply(tt.status, tt.header, tt.body))
			p, _ := newTestPlugin(t, config("discord://"+discordToken+"@"+discordID, fmt.Sprintf("base_url = %q", rc.URL)))
			r := plugintest.Deliver(t, p, failedDeployment("ev-o"))[0]
			plugintest.CheckResult(t, r, plugintest.WantResult{Outcome: tt.want, RetryAfterMin: tt.afterMin, RetryAfterMax: tt.afterMax,
				Has: tt.msg, HasNot: tt.msgAbsent})
			if n := len(rc.Requests()); n != 1 {
				t.Errorf("the receiver got %d requests (a redirect followed?)", n)
			}
		})
	}
}

// TestTimeout: a service slower than timeout makes the event retry.
func TestTimeout(t *testing.T) {
	rc := newReceiver(t)
	rc.SetRespond(outboundtest.Stall(5 * time.Second))
	p, _ := newTestPlugin(t, config("discord://tok@1", fmt.Sprintf("base_url = %q", rc.URL), `timeout = "200ms"`))
	start := time.Now()
	r := plugintest.Deliver(t, p, failedDeployment("ev-slow"))[0]
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "no answer within the timeout of 200ms") {
		t.Fatalf("result %v", r)
	}
}

// TestUnreachable: no one listening makes the event retry, and the message
// does not show the URL (its path holds the token).
func TestUnreachable(t *testing.T) {
	addr := outboundtest.ClosedAddr(t)
	p, buf := newTestPlugin(t, config("discord://"+discordToken+"@"+discordID, fmt.Sprintf("base_url = %q", "http://"+addr)))
	r := plugintest.Deliver(t, p, failedDeployment("ev-u"))[0]
	if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "request failed") || !strings.Contains(r.GetMessage(), "refused") {
		t.Fatalf("result %v", r)
	}
	for _, s := range []string{discordToken, discordID} {
		if strings.Contains(r.GetMessage(), s) || strings.Contains(buf.String(), s) {
			t.Fatalf("the message or log shows the URL: %q", r.GetMessage())
		}
	}
}

// TestCancelled: events not sent when Deliver's context ends are retried.
func TestCancelled(t *testing.T) {
	rc := newReceiver(t)
	p, _ := newTestPlugin(t, config("discord://tok@1", fmt.Sprintf("base_url = %q", rc.URL), "max_concurrency = 1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := p.Deliver(ctx, &pluginv1.DeliverRequest{Events: []*pluginv1.Event{failedDeployment("a"), failedDeployment("b")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "cancelled") {
			t.Errorf("result %v", r)
		}
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// TestNotConfigured: before Configure every event is retried.
func TestNotConfigured(t *testing.T) {
	resp, err := New().Deliver(context.Background(), &pluginv1.DeliverRequest{Events: []*pluginv1.Event{failedDeployment("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetResults()[0]; r.GetOutcome() != retry || !strings.Contains(r.GetMessage(), "not configured") {
		t.Fatalf("result %v", r)
	}
}

// TestConcurrencyBound: never more than max_concurrency requests in
// flight, also across concurrent Deliver calls, and more than one when
// allowed.
func TestConcurrencyBound(t *testing.T) {
	rc := newReceiver(t)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		time.Sleep(40 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	p, _ := newTestPlugin(t, config("discord://tok@1", fmt.Sprintf("base_url = %q", rc.URL), "max_concurrency = 3"))
	plugintest.DeliverAtOnce(t, p, 3, func(c int) []*pluginv1.Event {
		var events []*pluginv1.Event
		for i := range 8 {
			events = append(events, failedDeployment(fmt.Sprintf("c%d-ev-%d", c, i)))
		}
		return events
	})
	if m := rc.MaxInflight(); m > 3 || m < 2 {
		t.Fatalf("at most %d requests were in flight, want 2 or 3 (max_concurrency = 3)", m)
	}
	if n := len(rc.Requests()); n != 24 {
		t.Fatalf("%d requests", n)
	}
}

// TestPrivateRefusedAtDial: without allow_private, a host name resolving
// to loopback is refused when connecting, before any request, and the
// event fails saying why; with allow_private it is reached.
func TestPrivateRefusedAtDial(t *testing.T) {
	rc := newReceiver(t)
	_, port, _ := net.SplitHostPort(rc.HostPort())
	for _, tt := range []struct{ name, hcl string }{
		{"base_url", fmt.Sprintf("url = %q\nbase_url = %q", "discord://tok@1", "http://localhost:"+port)},
		{"ntfy server", fmt.Sprintf("url = %q", "ntfy://localhost:"+port+"/alerts?scheme=http")},
		{"generic host", fmt.Sprintf("url = %q", "generic+http://localhost:"+port+"/hook")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rc.Requests())
			l, buf := plugintest.JSONLogger()
			p := newWithLogger(l)
			if err := plugintest.Configure(p, Spec(), tt.hcl); err != nil {
				t.Fatal(err)
			}
			r := plugintest.Deliver(t, p, failedDeployment("ev-p"))[0]
			if r.GetOutcome() != failed || !strings.Contains(r.GetMessage(), "refused to connect to") ||
				!strings.Contains(r.GetMessage(), "a loopback address (a configuration problem") || !strings.Contains(r.GetMessage(), "not retried") {
				t.Fatalf("result %v", r)
			}
			if n := len(rc.Requests()) - before; n != 0 {
				t.Fatalf("the receiver got %d requests", n)
			}
			if !strings.Contains(buf.String(), "chat message not delivered") {
				t.Errorf("no warning logged:\n%s", buf)
			}
			if err := plugintest.Configure(p, Spec(), tt.hcl+"\nallow_private = true"); err != nil {
				t.Fatal(err)
			}
			if r := plugintest.Deliver(t, p, failedDeployment("ev-p"))[0]; r.GetOutcome() != delivered {
				t.Fatalf("with allow_private: %v", r)
			}
		})
	}
}

// TestSecretsNeverShown: a service echoing everything it got (the request
// URI, headers and body) in its answers and redirects gets none of the
// URL's tokens into results or the log.
func TestSecretsNeverShown(t *testing.T) {
	rc := newReceiver(t)
	addr := rc.HostPort()
	urls := []string{
		"discord://" + discordToken + "@" + discordID,
		"slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook",
		"slack://" + slackA + "/" + slackB + "/" + slackC,
		"telegram://" + telegramToken + "@telegram?chats=@ops,42",
		"ntfy://alice:pa55S3KRIT@" + addr + "/S3KRITtopic?scheme=http",
		"ntfy://" + addr + "/alerts?scheme=http&token=tk_S3KRIT",
		"gotify://" + addr + "/" + gotifyToken + "?disabletls=yes",
		"generic+http://u:S3KRITpw@" + addr + "/hook?key=S3KRITquery&@X-Api-Key=S3KRITkey1",
	}
	secrets := []string{discordToken, slackC, slackA + "-" + slackB, telegramToken, "AAH-S3KRIT_telegram", "S3KRIT"}
	for _, status := range []int{200, 301, 400, 429, 503} {
		rc.SetRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
			var echo bytes.Buffer
			_ = r.Header.Write(&echo)
			w.Header().Set("Location", "http://x.example.com"+r.RequestURI)
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "%s %s %s", r.RequestURI, echo.String(), body)
		})
		for _, u := range urls {
			extra := []string{}
			if !strings.Contains(u, addr) {
				extra = append(extra, fmt.Sprintf("base_url = %q", rc.URL))
			}
			p, buf := newTestPlugin(t, config(u, extra...))
			r := plugintest.Deliver(t, p, failedDeployment("ev-s"))[0]
			for _, sink := range []string{r.GetMessage(), buf.String()} {
				for _, secret := range secrets {
					if strings.Contains(sink, secret) {
						t.Fatalf("status %d, %.10s…: %q shows %q", status, u, sink, secret)
					}
				}
			}
			// A redirect's message quotes only Location, which holds a
			// secret only where the request path does.
			if status != 200 && (status != 301 || !strings.Contains(u, addr)) && !strings.Contains(r.GetMessage(), "[redacted]") {
				t.Errorf("status %d, %.10s…: message %q has nothing redacted", status, u, r.GetMessage())
			}
		}
	}
}

func TestBodyRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{``, 0},
		{`not json`, 0},
		{`{}`, 0},
		{`{"retry_after": 0.25}`, 250 * time.Millisecond},
		{`{"retry_after": 3}`, 3 * time.Second},
		{`{"retry_after": -3}`, 0},
		{`{"retry_after": "3"}`, 0},
		{`{"parameters": {"retry_after": 30}}`, 30 * time.Second},
		{`{"retry_after": 1, "parameters": {"retry_after": 30}}`, time.Second},
		{`{"retry_after": 3600}`, time.Hour},
		{`{"retry_after": 1e308}`, time.Hour},
	}
	for _, tt := range tests {
		if got := bodyRetryAfter([]byte(tt.in)); got != tt.want {
			t.Errorf("bodyRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRequestURL(t *testing.T) {
	tests := []struct {
		base string
		rq   request
		want string
	}{
		{"https://discord.com", request{path: "/api/webhooks/1/tok"}, "https://discord.com/api/webhooks/1/tok"},
		{"http://127.0.0.1:8080/relay", request{path: "/x", query: "a=1&b=2"}, "http://127.0.0.1:8080/relay/x?a=1&b=2"},
		{"http://[fe80::1%25eth0]:8080", request{path: "/hook", query: "q=1"}, "http://[fe80::1%25eth0]:8080/hook?q=1"},
		{"http://h.example.com/a%2Fb", request{path: "/c%2Fd"}, "http://h.example.com/a%2Fb/c%2Fd"},
		{"http://h.example.com", request{}, "http://h.example.com"},
	}
	for _, tt := range tests {
		base, err := parseBaseURL(tt.base)
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&settings{base: base}).requestURL(tt.rq)
		if err != nil || got != tt.want {
			t.Errorf("requestURL(%s + %+v) = %q, %v; want %q", tt.base, tt.rq, got, err, tt.want)
		}
	}
}

// TestOwnUserAgent: a generic URL's @User-Agent header is sent as it is.
func TestOwnUserAgent(t *testing.T) {
	rc := newReceiver(t)
	p, _ := newTestPlugin(t, config("generic+http://"+rc.HostPort()+"/hook?@User-Agent=ops-bot"))
	if r := plugintest.Deliver(t, p, failedDeployment("ev-ua"))[0]; r.GetOutcome() != delivered {
		t.Fatalf("result %v", r)
	}
	if got := rc.Requests()[0].Header.Get("User-Agent"); got != "ops-bot" {
		t.Fatalf("User-Agent %q", got)
	}
}

func TestRedactions(t *testing.T) {
	got := redactions([]string{"ab", "a b/c", "ab"})
	want := []string{"ab", "a b/c", "a%20b%2Fc", "a+b%2Fc"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("redactions = %q, want %q", got, want)
	}
	if m := outbound.Scrub("tok-en and tok", redactions([]string{"tok", "tok-en"})); m != "[redacted] and [redacted]" {
		t.Fatalf("scrub = %q", m)
	}
}
