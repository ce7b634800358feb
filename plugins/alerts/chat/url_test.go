package chat

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Tokens of the URL tests. Each holds S3KRIT, which no error may show.
const (
	discordToken  = "dT0ken_S3KRIT-x.y"
	discordID     = "112233445566778899"
	slackA        = "T01ABCDEF"
	slackB        = "B02GHIJKL"
	slackC        = "Zq3S3KRITPaRtCcCcCcCcCcC"
	telegramToken = "123456789:AAH-S3KRIT_telegram"
	gotifyToken   = "AS3KRITGotify01"
)

// sampleMessage is the message the URL tests build requests for.
var sampleMessage = message{
	headline: "✅ Deployment succeeded — shop",
	details:  []string{"Commit abc1234 on main: Fix <it> & @everyone"},
	link:     "https://shop.apps.example.com",
}

const sampleText = "✅ Deployment succeeded — shop\nCommit abc1234 on main: Fix <it> & @everyone\nhttps://shop.apps.example.com"

type wantRequest struct {
	label, path, query string
	header             http.Header
	body               string
}

func jsonH(extra ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestParseURL(t *testing.T) {
	textJSON := strings.ReplaceAll(sampleText, "\n", `\n`)
	discordBody := `{"allowed_mentions":{"parse":[]},"content":"` + textJSON + `"}`
	slackText := `✅ Deployment succeeded — shop\nCommit abc1234 on main: Fix &lt;it&gt; &amp; @everyone\nhttps://shop.apps.example.com`
	slackPath := "/services/" + slackA + "/" + slackB + "/" + slackC
	ntfyText := http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Click": {"https://shop.apps.example.com"}}
	tgPath := "/bot" + telegramToken + "/sendMessage"
	tests := []struct {
		name, url string
		service   string
		base      string
		want      []wantRequest
		secrets   []string // must be among the target's secrets
	}{
		{name: "discord", url: "discord://" + discordToken + "@" + discordID, service: "discord", base: "https://discord.com",
			want:    []wantRequest{{path: "/api/webhooks/" + discordID + "/" + discordToken, header: jsonH(), body: discordBody}},
			secrets: []string{discordToken}},
		{name: "discord, upper case scheme, thread and user name", url: "DISCORD://" + discordToken + "@" + discordID + "/?thread_id=42&Username=Wise+Hosting",
			service: "discord", base: "https://discord.com",
			want: []wantRequest{{path: "/api/webhooks/" + discordID + "/" + discordToken, query: "thread_id=42", header: jsonH(),
				body: `{"allowed_mentions":{"parse":[]},"content":"` + textJSON + `","username":"Wise Hosting"}`}}},
		{name: "slack hook form", url: "slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook", service: "slack", base: "https://hooks.slack.com",
			want:    []wantRequest{{path: slackPath, header: jsonH(), body: `{"text":"` + slackText + `"}`}},
			secrets: []string{slackC, slackA + "-" + slackB + "-" + slackC}},
		{name: "slack hook form with commas", url: "slack://hook:" + slackA + "," + slackB + "," + slackC + "@WebHook/", service: "slack", base: "https://hooks.slack.com",
			want: []wantRequest{{path: slackPath, header: jsonH(), body: `{"text":"` + slackText + `"}`}}},
		{name: "slack older form", url: "slack://" + slackA + "/" + slackB + "/" + slackC, service: "slack", base: "https://hooks.slack.com",
			want: []wantRequest{{path: slackPath, header: jsonH(), body: `{"text":"` + slackText + `"}`}}, secrets: []string{slackC}},
		{name: "slack older form with a bot name", url: "slack://Deploy%20Bot@" + slackA + "/" + slackB + "/" + slackC, service: "slack", base: "https://hooks.slack.com",
			want: []wantRequest{{path: slackPath, header: jsonH(), body: `{"text":"` + slackText + `","username":"Deploy Bot"}`}}},
		{name: "slack bot name parameter", url: "slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook?username=ops", service: "slack", base: "https://hooks.slack.com",
			want: []wantRequest{{path: slackPath, header: jsonH(), body: `{"text":"` + slackText + `","username":"ops"}`}}},
		{name: "ntfy", url: "ntfy://ntfy.example.com/alerts-42", service: "ntfy", base: "https://ntfy.example.com",
			want:    []wantRequest{{path: "/alerts-42", header: ntfyText, body: sampleText}},
			secrets: []string{"alerts-42"}},
		{name: "ntfy with a password, http, priority and tags", url: "ntfy://alice:pa55S3KRIT@127.0.0.1:8080/ops?scheme=HTTP&priority=high&tags=warning,skull",
			service: "ntfy", base: "http://127.0.0.1:8080",
			want: []wantRequest{{path: "/ops", body: sampleText, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"},
				"Click": {"https://shop.apps.example.com"}, "Authorization": {basic("alice", "pa55S3KRIT")}, "Priority": {"4"}, "Tags": {"warning,skull"}}}},
			secrets: []string{"pa55S3KRIT", base64.StdEncoding.EncodeToString([]byte("alice:pa55S3KRIT"))}},
		{name: "ntfy with an access token", url: "ntfy://[::1]:2586/ops?token=tk_S3KRIT&priority=5", service: "ntfy", base: "https://[::1]:2586",
			want: []wantRequest{{path: "/ops", body: sampleText, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"},
				"Click": {"https://shop.apps.example.com"}, "Authorization": {"Bearer tk_S3KRIT"}, "Priority": {"5"}}}},
			secrets: []string{"tk_S3KRIT"}},
		{name: "telegram, three chats", url: "telegram://" + telegramToken + "@telegram?chats=@ops_team,-100123,%200042", service: "telegram", base: "https://api.telegram.org",
			want: []wantRequest{
				{label: "chat @ops_team", path: tgPath, header: jsonH(), body: `{"chat_id":"@ops_team","text":"` + textJSON + `"}`},
				{label: "chat -100123", path: tgPath, header: jsonH(), body: `{"chat_id":-100123,"text":"` + textJSON + `"}`},
				{label: "chat 42", path: tgPath, header: jsonH(), body: `{"chat_id":42,"text":"` + textJSON + `"}`},
			},
			secrets: []string{telegramToken, "AAH-S3KRIT_telegram"}},
		{name: "telegram, channels alias, no preview, silent", url: "telegram://" + telegramToken + "@Telegram/?channels=7&preview=no&notification=No",
			service: "telegram", base: "https://api.telegram.org",
			want: []wantRequest{{label: "chat 7", path: tgPath, header: jsonH(),
				body: `{"chat_id":7,"disable_notification":true,"link_preview_options":{"is_disabled":true},"text":"` + textJSON + `"}`}}},
		{name: "telegram, preview and notification on", url: "telegram://" + telegramToken + "@telegram?chats=7&preview=yes&notification=true",
			service: "telegram", base: "https://api.telegram.org",
			want: []wantRequest{{label: "chat 7", path: tgPath, header: jsonH(), body: `{"chat_id":7,"text":"` + textJSON + `"}`}}},
		{name: "gotify", url: "gotify://gotify.example.com/" + gotifyToken, service: "gotify", base: "https://gotify.example.com",
			want: []wantRequest{{path: "/message", header: jsonH("X-Gotify-Key", gotifyToken),
				body: `{"message":"Commit abc1234 on main: Fix <it> & @everyone\nhttps://shop.apps.example.com","priority":5,"title":"✅ Deployment succeeded — shop"}`}},
			secrets: []string{gotifyToken}},
		{name: "gotify under a path, priority, no TLS", url: "gotify://gotify.example.com:8443/sub/path/" + gotifyToken + "/?priority=8&DisableTLS=yes",
			service: "gotify", base: "http://gotify.example.com:8443",
			want: []wantRequest{{path: "/sub/path/message", header: jsonH("X-Gotify-Key", gotifyToken),
				body: `{"message":"Commit abc1234 on main: Fix <it> & @everyone\nhttps://shop.apps.example.com","priority":8,"title":"✅ Deployment succeeded — shop"}`}}},
		{name: "generic+https", url: "generic+https://hooks.example.com/notify?team=ops&team=dev&key=S3KRITquery",
			service: "generic", base: "https://hooks.example.com",
			want: []wantRequest{{path: "/notify", query: "key=S3KRITquery&team=ops&team=dev", header: jsonH(),
				body: `{"message":"` + textJSON + `","title":"✅ Deployment succeeded — shop"}`}},
			secrets: []string{"S3KRITquery"}},
		{name: "generic with everything", url: "generic://hooks.example.com:8080/a%2Fb/c?disabletls=yes&titlekey=subject&messagekey=text&@X-Api-Key=S3KRITkey1&$source=wisehosting&template=JSON",
			service: "generic", base: "http://hooks.example.com:8080",
			want: []wantRequest{{path: "/a%2Fb/c", header: jsonH("X-Api-Key", "S3KRITkey1"),
				body: `{"source":"wisehosting","subject":"✅ Deployment succeeded — shop","text":"` + textJSON + `"}`}},
			secrets: []string{"S3KRITkey1"}},
		{name: "generic+http with basic auth", url: "generic+http://user:S3KRITpw@10.0.0.5:8080/hook", service: "generic", base: "http://10.0.0.5:8080",
			want: []wantRequest{{path: "/hook", header: jsonH("Authorization", basic("user", "S3KRITpw")),
				body: `{"message":"` + textJSON + `","title":"✅ Deployment succeeded — shop"}`}},
			secrets: []string{"S3KRITpw"}},
		{name: "generic without a path", url: "generic+https://hooks.example.com", service: "generic", base: "https://hooks.example.com",
			want: []wantRequest{{header: jsonH(), body: `{"message":"` + textJSON + `","title":"✅ Deployment succeeded — shop"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := parseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if tg.service != tt.service || tg.base.String() != tt.base {
				t.Fatalf("service %q, base %q", tg.service, tg.base)
			}
			reqs, err := tg.build(sampleMessage)
			if err != nil {
				t.Fatal(err)
			}
			if len(reqs) != len(tt.want) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.want))
			}
			for i, w := range tt.want {
				r := reqs[i]
				if r.label != w.label || r.path != w.path || r.query != w.query {
					t.Errorf("request %d: label %q path %q query %q, want %q %q %q", i, r.label, r.path, r.query, w.label, w.path, w.query)
				}
				if !reflect.DeepEqual(r.header, w.header) {
					t.Errorf("request %d: header %v, want %v", i, r.header, w.header)
				}
				if string(r.body) != w.body {
					t.Errorf("request %d: body\n got: %s\nwant: %s", i, r.body, w.body)
				}
			}
			for _, s := range tt.secrets {
				found := false
				for _, have := range tg.secrets {
					found = found || have == s
				}
				if !found {
					t.Errorf("secret %q is not among %q", s, tg.secrets)
				}
			}
		})
	}
}

// badURLs are URLs parseURL rejects, with a part of the error each gets.
var badURLs = []struct{ url, want string }{
	{"", "url is required"},
	{" discord://" + discordToken + "@1", "white space"},
	{"discord:" + discordToken + "@1", "must be service://"},
	{"mailto://" + discordToken + "@example.com", `unsupported scheme "mailto"`},
	{"no\x00scheme://S3KRIT", "unsupported scheme: use"},
	{"discord://" + discordToken + "@" + discordID + "#S3KRIT", "fragment"},
	{"discord://" + discordToken + "@" + discordID + ":99999", "port is not between"},
	{"ntfy://ntfy.example.com:/S3KRITtopic", "empty port"},
	{"ntfy://ntfy.example.com:S3KRIT/topic", "not a valid URL: invalid port"},
	{"discord://" + discordToken + "@" + discordID + "/%zzS3KRIT", "not a valid URL: invalid URL escape"},
	{"discord:///S3KRIT", "token is missing"},
	{"discord://" + discordID, "token is missing"},
	{"discord://" + discordToken + ":x@" + discordID, "the user info is the token alone"},
	{"discord://to%20kS3KRIT@" + discordID, "the token may hold only"},
	{"discord://" + discordToken + "@webhook", "the webhook id (the host part) must be digits"},
	{"discord://" + discordToken + "@" + discordID + ":443", "must be digits, without a port"},
	{"discord://" + discordToken + "@" + discordID + "/raw", "raw JSON mode"},
	{"discord://" + discordToken + "@" + discordID + "/S3KRIT", "has a path"},
	{"discord://" + discordToken + "@" + discordID + "?color=S3KRIT", `query parameter "color" is not supported (supported: thread_id, username)`},
	{"discord://" + discordToken + "@" + discordID + "?S3KRIT%2F%2F=1", "query parameter (a name that is not shown) is not supported"},
	{"discord://" + discordToken + "@" + discordID + "?thread_id=S3KRIT", "thread_id must be digits"},
	{"discord://" + discordToken + "@" + discordID + "?username=a&username=b", "more than once"},
	{"discord://" + discordToken + "@" + discordID + "?username=a%0Ab", "username must be 1 to 80 printable characters"},
	{"discord://" + discordToken + "@" + discordID + "?x=%zz", "the query is not valid"},
	{"slack://xoxb:123-S3KRIT-789@C0123", "Slack API tokens (xox…) are not supported"},
	{"slack://bot:" + slackA + "-" + slackB + "-" + slackC + "@webhook", "starts with hook:"},
	{"slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@general", `the host must be "webhook"`},
	{"slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook/S3KRIT", "has a path"},
	{"slack://hook:short-" + slackB + "-" + slackC + "@webhook", "three parts"},
	{"slack://hook:" + slackA + "-" + slackB + "," + slackC + "@webhook", "three parts"},
	{"slack://hook:" + slackA + "-" + slackB + "-S3KRITtooshort@webhook", "three parts"},
	{"slack://" + slackA + "/" + slackB, "three parts"},
	{"slack://" + slackA + "/" + slackB + "/" + slackC + "/extra", "three parts"},
	{"slack://" + strings.ToLower(slackA) + "/" + slackB + "/" + slackC, "three parts"},
	{"slack://" + slackA + ":443/" + slackB + "/" + slackC, "write slack://hook:"},
	{"slack://Bot@" + slackA + "/" + slackB + "/" + slackC + "?botname=x", "given twice"},
	{"slack://" + slackA + "/" + slackB + "/" + slackC + "?channel=x", `query parameter "channel" is not supported (supported: botname, username)`},
	{"ntfy:///S3KRITtopic", "the server is missing"},
	{"ntfy://ntfy.example.com", "the topic is missing"},
	{"ntfy://ntfy.example.com/", "the topic is missing"},
	{"ntfy://ntfy.example.com/a/S3KRIT", "one path segment"},
	{"ntfy://ntfy.example.com/" + strings.Repeat("x", 65), "1 to 64"},
	{"ntfy://ntfy.example.com/topic?scheme=ftp", "scheme must be http or https"},
	{"ntfy://aliceS3KRIT@ntfy.example.com/topic", "a user name needs its password"},
	{"ntfy://alice:S3KRIT@ntfy.example.com/topic?token=tk_S3KRIT", "either user:password or token"},
	{"ntfy://ntfy.example.com/topic?token=", "token must be an access token"},
	{"ntfy://ntfy.example.com/topic?token=S3KRIT%21", "token must be an access token"},
	{"ntfy://ntfy.example.com/topic?priority=9", "priority must be 1 to 5"},
	{"ntfy://ntfy.example.com/topic?tags=a%21b", "tags must be"},
	{"ntfy://ntfy.example.com/topic?tags=a,,b", "tags must be"},
	{"ntfy://ntfy.example.com/topic?tags=1,2,3,4,5,6,7,8,9,10,11", "at most 10 tags"},
	{"ntfy://ntfy.example.com/topic?title=x", `query parameter "title" is not supported`},
	{"telegram://" + telegramToken + "@telegram", "chats is required"},
	{"telegram://" + telegramToken + "@telegram?chats=", "chats is required"},
	{"telegram://telegram?chats=1", "the bot token is missing"},
	{"telegram://123456789@telegram?chats=1", "the bot token must be"},
	{"telegram://abc:AAH-S3KRIT@telegram?chats=1", "the bot token must be"},
	{"telegram://123:@telegram?chats=1", "the bot token must be"},
	{"telegram://123:AAH!S3KRIT@telegram?chats=1", "the bot token must be"},
	{"telegram://" + telegramToken + "@api.telegram.org?chats=1", `the host must be "telegram"`},
	{"telegram://" + telegramToken + "@telegram/S3KRIT?chats=1", "has a path"},
	{"telegram://" + telegramToken + "@telegram?chats=@ops,oops", "chats entry 2 is neither"},
	{"telegram://" + telegramToken + "@telegram?chats=@ops,", "chats entry 2 is neither"},
	{"telegram://" + telegramToken + "@telegram?chats=@", "chats entry 1 is neither"},
	{"telegram://" + telegramToken + "@telegram?chats=@ops,@ops", "chats entry 2 is there twice"},
	{"telegram://" + telegramToken + "@telegram?chats=1,01", "chats entry 2 is there twice"},
	{"telegram://" + telegramToken + "@telegram?chats=99999999999999999999", "chats entry 1 is neither"},
	{"telegram://" + telegramToken + "@telegram?chats=1&preview=maybe", "preview must be yes or no"},
	{"telegram://" + telegramToken + "@telegram?chats=1&notification=maybe", "notification must be yes or no"},
	{"telegram://" + telegramToken + "@telegram?chats=1&chats=2", "more than once"},
	{"telegram://" + telegramToken + "@telegram?chats=1&channels=2", "more than once"},
	{"telegram://" + telegramToken + "@telegram?chats=" + manyChats(51), "at most 50 chats"},
	{"telegram://" + telegramToken + "@telegram?chats=1&parsemode=HTML", `query parameter "parsemode" is not supported`},
	{"gotify://gotify.example.com", "the application token is missing"},
	{"gotify://gotify.example.com/", "the application token is missing"},
	{"gotify:///" + gotifyToken, "the server is missing"},
	{"gotify://gotify.example.com/to%2FkenS3KRIT", "the application token (the last path segment) must be"},
	{"gotify://gotify.example.com/" + gotifyToken + "?priority=11", "priority must be a number from 0 to 10"},
	{"gotify://gotify.example.com/" + gotifyToken + "?priority=high", "priority must be a number"},
	{"gotify://gotify.example.com/" + gotifyToken + "?disabletls=maybe", "disabletls must be yes or no"},
	{"gotify://gotify.example.com/" + gotifyToken + "?title=x", `query parameter "title" is not supported`},
	{"generic+https:///S3KRIT", "the host is missing"},
	{"generic+https://hooks.example.com/p?title=x", `query parameter "title" is not supported`},
	{"generic+https://hooks.example.com/p?Method=GET", `query parameter "Method" is not supported`},
	{"generic+https://hooks.example.com/p?contenttype=text/plain", "not supported"},
	{"generic+https://hooks.example.com/p?template=S3KRIT", "only template=json"},
	{"generic+https://hooks.example.com/p?disabletls=yes", "disabletls goes only with generic://"},
	{"generic://hooks.example.com/p?disabletls=S3KRIT", "disabletls must be yes or no"},
	{"generic+https://hooks.example.com/p?@Host=S3KRIT", `url: generic: headers: "Host" is refused: the plugin and its HTTP client set it`},
	{"generic+https://hooks.example.com/p?@content-type=S3KRIT", `headers: "Content-Type" is refused`},
	{"generic+https://hooks.example.com/p?@Bad%20Name=S3KRIT", "needs a valid header name"},
	{"generic+https://hooks.example.com/p?@=S3KRIT", "needs a valid header name"},
	{"generic+https://hooks.example.com/p?@X-A=a%0AS3KRIT", `headers: the value of "X-A" holds a control character`},
	{"generic+https://hooks.example.com/p?@X-A=" + strings.Repeat("S", 4097), "longer than 4096 bytes"},
	{"generic+https://hooks.example.com/p?@X-A=1&@X-A=2", "more than once"},
	{"generic+https://hooks.example.com/p?@X-A=1&@x-a=2", "set twice"},
	{"generic+https://u:S3KRIT@hooks.example.com/p?@Authorization=S3KRIT", "set twice"},
	{"generic+https://hooks.example.com/p?titlekey=a&messagekey=a", "must differ"},
	{"generic+https://hooks.example.com/p?titlekey=", "titlekey must be 1 to 64 bytes"},
	{"generic+https://hooks.example.com/p?titlekey=a&titlekey=b", "more than once"},
	{"generic+https://hooks.example.com/p?%24title=S3KRIT", `extra field "title" would overwrite`},
	{"generic+https://hooks.example.com/p?%24=S3KRIT", "needs a name"},
	{"generic+https://hooks.example.com/p?" + manyFields(33), "at most 32 extra fields"},
	{"discord://" + strings.Repeat("S3KRIT", 700) + "@1", "longer than 4096 bytes"},
}

func manyChats(n int) string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprint(i+1))
	}
	return strings.Join(ids, ",")
}

func manyFields(n int) string {
	var kv []string
	for i := range n {
		kv = append(kv, fmt.Sprintf("%%24f%d=v", i))
	}
	return strings.Join(kv, "&")
}

func TestParseURLRejects(t *testing.T) {
	for _, tt := range badURLs {
		name := tt.url
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			tg, err := parseURL(tt.url)
			if err == nil {
				t.Fatalf("accepted as %s", tg.service)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "url") {
				t.Errorf("error %q does not name the url attribute", err)
			}
			if strings.Contains(err.Error(), "S3KRIT") {
				t.Fatalf("error %q shows a part of the URL that may be a secret", err)
			}
		})
	}
}

// FuzzParseURL: no URL makes parseURL panic; a rejected URL's error shows
// none of the URL's user info, host, path or query values (it may name its
// scheme and parameters); an accepted one builds requests to an http(s)
// base with every credential of the URL among the target's secrets.
func FuzzParseURL(f *testing.F) {
	vocabulary := strings.Builder{}
	for _, tt := range badURLs {
		f.Add(tt.url)
		if _, err := parseURL(tt.url); err != nil {
			vocabulary.WriteString(err.Error() + "\n")
		}
	}
	for _, s := range []string{
		"discord://" + discordToken + "@" + discordID + "?thread_id=1&username=x",
		"slack://hook:" + slackA + "-" + slackB + "-" + slackC + "@webhook",
		"slack://bot@" + slackA + "/" + slackB + "/" + slackC,
		"ntfy://alice:pw@ntfy.example.com:8080/topic?scheme=http&priority=max&tags=a,b",
		"ntfy://ntfy.example.com/topic?token=tk_abc",
		"telegram://" + telegramToken + "@telegram?chats=@ops,-100,5&preview=no",
		"gotify://gotify.example.com/sub/" + gotifyToken + "?priority=2&disabletls=yes",
		"generic://u:p@hooks.example.com/x/y?a=b&@X-Key=v&$f=g&titlekey=t&messagekey=m&disabletls=no",
		"generic+http://[::1]:8080/%41?x",
	} {
		f.Add(s)
	}
	vocab := strings.ToLower(vocabulary.String())
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseURL(raw)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "url") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error %q", msg)
			}
			if leak := leaked(raw, msg, vocab); leak != "" {
				t.Fatalf("the error %q shows %q of the URL %q", msg, leak, raw)
			}
			return
		}
		switch tg.service {
		case "discord", "slack", "ntfy", "telegram", "gotify", "generic":
		default:
			t.Fatalf("service %q", tg.service)
		}
		if (tg.base.Scheme != "http" && tg.base.Scheme != "https") || tg.base.Host == "" || tg.base.Path != "" {
			t.Fatalf("base %v", tg.base)
		}
		for _, s := range tg.secrets {
			if s == "" {
				t.Fatal("an empty secret")
			}
		}
		reqs, err := tg.build(sampleMessage)
		if err != nil || len(reqs) == 0 {
			t.Fatalf("build: %d requests, %v", len(reqs), err)
		}
		for _, r := range reqs {
			if r.path != "" && r.path[0] != '/' {
				t.Fatalf("path %q", r.path)
			}
			full := tg.base.String() + r.path
			if r.query != "" {
				full += "?" + r.query
			}
			if _, err := url.Parse(full); err != nil {
				t.Fatalf("request URL %q: %v", full, err)
			}
			if r.header.Get("Content-Type") == "" || len(r.body) == 0 {
				t.Fatalf("request %v", r)
			}
		}
		u, _ := url.Parse(raw)
		if tg.service == "discord" && !contains(tg.secrets, u.User.Username()) {
			t.Fatalf("the discord token is not a secret")
		}
		if pass, ok := u.User.Password(); ok && pass != "" && !contains(tg.secrets, pass) {
			t.Fatalf("the password of %q is not a secret (%q)", raw, tg.secrets)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// leaked returns a part of raw of 10 bytes or more that could be a secret
// (user info, host, path segment, query value, or all after "://") and
// that msg shows, or "". Parts that are within the scheme, a query key or
// the errors' own vocabulary are not counted: errors may show those.
func leaked(raw, msg, vocab string) string {
	var parts []string
	allowed := []string{vocab}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		parts = append(parts, rest)
		allowed = append(allowed, strings.ToLower(scheme))
	}
	if u, err := url.Parse(raw); err == nil {
		pass, _ := u.User.Password()
		parts = append(parts, u.User.Username(), pass, u.Host, u.Path, u.RawQuery)
		parts = append(parts, strings.Split(u.Path, "/")...)
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for k, vs := range q {
				allowed = append(allowed, strings.ToLower(k))
				parts = append(parts, vs...)
			}
		}
		for kv := range strings.SplitSeq(u.RawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			allowed = append(allowed, strings.ToLower(k))
			parts = append(parts, v)
		}
	}
	for _, p := range parts {
		if len(p) < 10 || !strings.Contains(msg, p) {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.Contains(a, strings.ToLower(p))
		}
		if !ok {
			return p
		}
	}
	return ""
}

// TestLeaked: the fuzz target's leak check finds a shown token and lets
// the scheme, parameter names and the errors' own words pass.
func TestLeaked(t *testing.T) {
	tests := []struct{ raw, msg, vocab, want string }{
		{"discord://abcdefghijkl@1", "url: discord: abcdefghijkl", "", "abcdefghijkl"},
		{"ntfy://host.example.com/topic", "url: ntfy: host.example.com", "", "host.example.com"},
		{"generic+https://h/p?a=secretvalue1", "url: generic: secretvalue1", "", "secretvalue1"},
		{"generic+https://h/p?somelongname=1", `url: generic: "somelongname"`, "", ""},
		{"verylongscheme://x", `url: unsupported scheme "verylongscheme"`, "", ""},
		{"discord://x@1/webhook_id_x", "url: discord: write discord://token@webhook_id_x", "discord://token@webhook_id_x", ""},
		{"discord://short@1", "url: discord: short", "", ""},
	}
	for _, tt := range tests {
		if got := leaked(tt.raw, tt.msg, tt.vocab); got != tt.want {
			t.Errorf("leaked(%q, %q) = %q, want %q", tt.raw, tt.msg, got, tt.want)
		}
	}
}
