package chat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/outbound"
)

// maxURL bounds the length of the url attribute.
const maxURL = 4096

// Hosts of the APIs of the services whose URLs name no server; requests go
// to them over https unless base_url says otherwise.
const (
	discordAPI  = "discord.com"
	slackAPI    = "hooks.slack.com"
	telegramAPI = "api.telegram.org"
)

// Bounds of the parts of chat URLs.
const (
	maxTelegramChats = 50
	maxGenericFields = 32
)

// target is a parsed chat URL: the service, the origin of its API, the
// strings no message or log line may show, and how a message becomes
// requests.
type target struct {
	service string
	// base is the scheme and host (with port) requests go to, unless
	// base_url overrides it.
	base *url.URL
	// secrets are the URL's credentials: tokens, passwords, header and
	// query values that may be ones.
	secrets []string
	// build turns a message into the requests that deliver it: one, or
	// one per chat for telegram.
	build func(m message) ([]request, error)
}

// request is one POST of a delivery.
type request struct {
	label  string      // which of several requests ("chat @ops"); "" when alone
	path   string      // escaped path after the base's, "" or starting with "/"
	query  string      // encoded query, "" for none
	header http.Header // Content-Type included
	body   []byte
}

// parseURL parses a shoutrrr-style chat URL (see the package comment for
// the forms). Its errors show at most the URL's scheme and the names of
// query parameters, never its user info, host, path or query values,
// which hold the tokens.
func parseURL(raw string) (*target, error) {
	switch {
	case raw == "":
		return nil, errors.New("url is required")
	case strings.TrimSpace(raw) != raw:
		return nil, errors.New("url has leading or trailing white space")
	case len(raw) > maxURL:
		return nil, fmt.Errorf("url is longer than %d bytes", maxURL)
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("url must be service://…: discord://, slack://, ntfy://, telegram://, gotify:// or generic+https://")
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "discord", "slack", "ntfy", "telegram", "gotify", "generic", "generic+https", "generic+http":
	default:
		if len(scheme) <= 20 && validScheme(scheme) {
			return nil, fmt.Errorf("url: unsupported scheme %q: use discord, slack, ntfy, telegram, gotify, generic+https or generic+http", scheme)
		}
		return nil, errors.New("url: unsupported scheme: use discord, slack, ntfy, telegram, gotify, generic+https or generic+http")
	}
	svc := strings.TrimSuffix(strings.TrimSuffix(scheme, "+https"), "+http")
	if strings.Contains(raw, "#") {
		return nil, fmt.Errorf("url: %s: a # starts a fragment, which is never sent: write # as %%23", svc)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %s: not a valid URL: %s", svc, parseProblem(err))
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("url: %s: write %s://… with two slashes", svc, scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("url: %s: the query is not valid (%s)", svc, parseProblem(err))
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("url: %s: the port is not between 1 and 65535", svc)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("url: %s: empty port", svc)
	}
	// Requests go to https://<host>: the host must be one such a URL
	// accepts (an IPv6 address in brackets, a port of digits).
	if again, err := url.Parse((&url.URL{Scheme: "https", Host: u.Host}).String()); err != nil || again.Host != u.Host {
		return nil, fmt.Errorf("url: %s: the host is not valid (an IPv6 address goes in brackets: [::1])", svc)
	}
	switch svc {
	case "discord":
		return parseDiscord(u, q)
	case "slack":
		return parseSlack(u, q)
	case "ntfy":
		return parseNtfy(u, q)
	case "telegram":
		return parseTelegram(u, q)
	case "gotify":
		return parseGotify(u, q)
	}
	return parseGeneric(scheme, u, q)
}

// validScheme reports whether s has the syntax of a URL scheme.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return onlyChars(s, "+-.", true)
}

// parseProblem is what url.Parse or ParseQuery found wrong, without the
// part of the URL it quotes (a token may be in it).
func parseProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(err.Error(), "net/url: ")
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg = msg[:i]
	}
	if msg = strings.TrimSpace(msg); msg == "" {
		return "unparsable"
	}
	return msg
}

// onlyChars reports whether every byte of s is an ASCII digit, an upper
// case letter, a lower case one when lower is set, or one of extra.
func onlyChars(s, extra string, lower bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
		case c >= 'a' && c <= 'z' && lower:
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// digits reports whether s is 1 to maxLen ASCII digits.
func digits(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// noPath checks that a URL whose host and user info say everything has no
// path.
func noPath(svc, form string, u *url.URL) error {
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("url: %s: the URL has a path, which this service does not use: write %s", svc, form)
	}
	return nil
}

// readParams reads the query parameters of a service: each key (matched
// case-insensitively) must be one of known, which maps names and aliases
// to the canonical name, and appear once.
func readParams(svc string, q url.Values, known map[string]string) (map[string]string, error) {
	out := map[string]string{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first problem reported is always the same one
	for _, k := range keys {
		name, ok := known[strings.ToLower(k)]
		if !ok {
			supported := make([]string, 0, len(known))
			for alias := range known {
				supported = append(supported, alias)
			}
			slices.Sort(supported)
			list := strings.Join(supported, ", ")
			if list == "" {
				list = "none"
			}
			return nil, fmt.Errorf("url: %s: query parameter %s is not supported (supported: %s)", svc, paramName(k), list)
		}
		if _, dup := out[name]; dup || len(q[k]) > 1 {
			return nil, fmt.Errorf("url: %s: query parameter %s is given more than once", svc, paramName(k))
		}
		out[name] = q[k][0]
	}
	return out, nil
}

// paramName quotes a query parameter's name for an error when it looks
// like a parameter name, not like a token pasted in the wrong place.
func paramName(k string) string {
	if k != "" && len(k) <= 24 && onlyChars(k, "_-.@$", true) {
		return strconv.Quote(k)
	}
	return "(a name that is not shown)"
}

// parseBool reads yes/no, true/false, 1/0.
func parseBool(svc, name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "1":
		return true, nil
	case "no", "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("url: %s: %s must be yes or no", svc, name)
}

// jsonBody encodes v without HTML escaping (chat services show the text
// as it is).
func jsonBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the request body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonRequest is a request with v as its JSON body.
func jsonRequest(label, path, query string, header http.Header, v any) ([]request, error) {
	body, err := jsonBody(v)
	if err != nil {
		return nil, err
	}
	return []request{{label: label, path: path, query: query, header: header, body: body}}, nil
}

// origin is https://host, a service's API origin.
func origin(host string) *url.URL { return &url.URL{Scheme: "https", Host: host} }

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

// parseDiscord reads discord://TOKEN@WEBHOOK_ID[?thread_id=…&username=…].
func parseDiscord(u *url.URL, q url.Values) (*target, error) {
	const svc, form = "discord", "discord://token@webhook_id"
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("url: %s: the token is missing: write %s", svc, form)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("url: %s: write %s (the user info is the token alone)", svc, form)
	}
	token := u.User.Username()
	if len(token) > 256 || !onlyChars(token, "-_.", true) {
		return nil, fmt.Errorf("url: %s: the token may hold only letters, digits, '-', '_' and '.'", svc)
	}
	if !digits(u.Host, 32) {
		return nil, fmt.Errorf("url: %s: the webhook id (the host part) must be digits, without a port: write %s", svc, form)
	}
	if u.Path == "/raw" {
		return nil, fmt.Errorf("url: %s: the raw JSON mode (/raw) is not supported: write %s", svc, form)
	}
	if err := noPath(svc, form, u); err != nil {
		return nil, err
	}
	p, err := readParams(svc, q, map[string]string{"thread_id": "thread_id", "username": "username"})
	if err != nil {
		return nil, err
	}
	query := ""
	if th, ok := p["thread_id"]; ok {
		if !digits(th, 32) {
			return nil, fmt.Errorf("url: %s: thread_id must be digits", svc)
		}
		query = "thread_id=" + th
	}
	username, err := displayName(svc, "username", p)
	if err != nil {
		return nil, err
	}
	path := "/api/webhooks/" + u.Host + "/" + url.PathEscape(token)
	return &target{
		service: svc,
		base:    origin(discordAPI),
		secrets: []string{token},
		build: func(m message) ([]request, error) {
			body := map[string]any{
				"content": m.text(),
				// A commit message saying @everyone must not ping anyone.
				"allowed_mentions": map[string]any{"parse": []string{}},
			}
			if username != "" {
				body["username"] = username
			}
			return jsonRequest("", path, query, jsonHeader(), body)
		},
	}, nil
}

// displayName reads an optional bot name parameter: 1 to 80 printable
// characters.
func displayName(svc, name string, p map[string]string) (string, error) {
	v, ok := p[name]
	if !ok {
		return "", nil
	}
	if v == "" || utf8.RuneCountInString(v) > 80 || clean(v, 81) != v {
		return "", fmt.Errorf("url: %s: %s must be 1 to 80 printable characters", svc, name)
	}
	return v, nil
}

// parseSlack reads slack://hook:A-B-C@webhook (shoutrrr's form for
// incoming webhooks) and the older slack://[botname@]A/B/C.
func parseSlack(u *url.URL, q url.Values) (*target, error) {
	const svc, form = "slack", "slack://hook:TOKEN_A-TOKEN_B-TOKEN_C@webhook"
	var parts []string
	var botname, spelled string
	if pass, has := u.User.Password(); u.User != nil && has {
		spelled = pass
		switch kind := u.User.Username(); {
		case strings.HasPrefix(kind, "xox"):
			return nil, fmt.Errorf("url: %s: Slack API tokens (xox…) are not supported, only incoming webhooks: write %s", svc, form)
		case kind != "hook":
			return nil, fmt.Errorf("url: %s: write %s (the user info starts with hook:)", svc, form)
		}
		if !strings.EqualFold(u.Host, "webhook") {
			return nil, fmt.Errorf("url: %s: the host must be \"webhook\" (an incoming webhook posts to the channel it was made for): write %s", svc, form)
		}
		if err := noPath(svc, form, u); err != nil {
			return nil, err
		}
		for _, sep := range []string{"-", ",", "/"} {
			if strings.Contains(pass, sep) {
				parts = strings.Split(pass, sep)
				break
			}
		}
	} else {
		// The older form: slack://[botname@]A/B/C.
		if u.User != nil {
			botname = u.User.Username()
		}
		if u.Port() != "" {
			return nil, fmt.Errorf("url: %s: write %s", svc, form)
		}
		parts = append([]string{u.Host}, strings.Split(strings.TrimPrefix(u.Path, "/"), "/")...)
	}
	if len(parts) != 3 || !slackPart(parts[0], 9, 32, false) || !slackPart(parts[1], 9, 32, false) || !slackPart(parts[2], 24, 64, true) {
		return nil, fmt.Errorf("url: %s: the webhook token must be three parts, as in https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX: write %s", svc, form)
	}
	p, err := readParams(svc, q, map[string]string{"botname": "botname", "username": "botname"})
	if err != nil {
		return nil, err
	}
	if _, set := p["botname"]; set && botname != "" {
		return nil, fmt.Errorf("url: %s: the bot name is given twice (botname@ and a parameter)", svc)
	}
	if botname != "" {
		p["botname"] = botname
	}
	username, err := displayName(svc, "botname", p)
	if err != nil {
		return nil, err
	}
	path := "/services/" + strings.Join(parts, "/")
	secrets := []string{parts[0] + "/" + parts[1] + "/" + parts[2], parts[2], parts[1], parts[0]}
	if spelled != "" {
		secrets = append(secrets, spelled)
	}
	return &target{
		service: svc,
		base:    origin(slackAPI),
		secrets: secrets,
		build: func(m message) ([]request, error) {
			body := map[string]any{"text": slackEscape(m.text())}
			if username != "" {
				body["username"] = username
			}
			return jsonRequest("", path, "", jsonHeader(), body)
		},
	}, nil
}

func slackPart(s string, minLen, maxLen int, lower bool) bool {
	return len(s) >= minLen && len(s) <= maxLen && onlyChars(s, "", lower)
}

// slackEscape escapes the three characters Slack's message formatting
// gives a meaning: <!channel> in a commit message must not ping a channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// parseNtfy reads ntfy://[user:password@]host[:port]/topic[?scheme=…&token=…&priority=…&tags=…].
func parseNtfy(u *url.URL, q url.Values) (*target, error) {
	const svc, form = "ntfy", "ntfy://[user:password@]host[:port]/topic"
	if u.Hostname() == "" {
		return nil, fmt.Errorf("url: %s: the server is missing: write %s", svc, form)
	}
	topic := strings.TrimPrefix(u.Path, "/")
	if topic == "" {
		return nil, fmt.Errorf("url: %s: the topic is missing: write %s", svc, form)
	}
	if len(topic) > 64 || !onlyChars(topic, "-_", true) {
		return nil, fmt.Errorf("url: %s: the topic must be 1 to 64 letters, digits, '-' and '_' (one path segment): write %s", svc, form)
	}
	p, err := readParams(svc, q, map[string]string{"scheme": "scheme", "token": "token", "priority": "priority", "tags": "tags"})
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if s, ok := p["scheme"]; ok {
		if s = strings.ToLower(s); s != "http" && s != "https" {
			return nil, fmt.Errorf("url: %s: scheme must be http or https", svc)
		}
		scheme = s
	}
	header := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	var secrets []string
	if u.User != nil {
		pass, has := u.User.Password()
		if !has || pass == "" || u.User.Username() == "" {
			return nil, fmt.Errorf("url: %s: a user name needs its password: write ntfy://user:password@host/topic", svc)
		}
		cred := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pass))
		header.Set("Authorization", "Basic "+cred)
		secrets = append(secrets, cred, pass)
	}
	if tok, ok := p["token"]; ok {
		if u.User != nil {
			return nil, fmt.Errorf("url: %s: give either user:password or token, not both", svc)
		}
		if tok == "" || len(tok) > 256 || !onlyChars(tok, "-_.", true) {
			return nil, fmt.Errorf("url: %s: token must be an access token (letters, digits, '-', '_' and '.')", svc)
		}
		header.Set("Authorization", "Bearer "+tok)
		secrets = append(secrets, tok)
	}
	if pr, ok := p["priority"]; ok {
		n, err := ntfyPriority(pr)
		if err != nil {
			return nil, fmt.Errorf("url: %s: %w", svc, err)
		}
		header.Set("Priority", strconv.Itoa(n))
	}
	if tags, ok := p["tags"]; ok {
		list := strings.Split(tags, ",")
		if len(list) > 10 {
			return nil, fmt.Errorf("url: %s: at most 10 tags", svc)
		}
		for _, tag := range list {
			if tag == "" || len(tag) > 64 || !onlyChars(tag, "-_+", true) {
				return nil, fmt.Errorf("url: %s: tags must be a comma-separated list of letters, digits, '-', '_' and '+'", svc)
			}
		}
		header.Set("Tags", tags)
	}
	if len(topic) >= 8 {
		// Whoever knows a topic on a public server may read it.
		secrets = append(secrets, topic)
	}
	path := "/" + topic
	return &target{
		service: svc,
		base:    &url.URL{Scheme: scheme, Host: u.Host},
		secrets: secrets,
		build: func(m message) ([]request, error) {
			h := header.Clone()
			if m.link != "" {
				h.Set("Click", m.link) // opening the notification opens the app
			}
			return []request{{path: path, header: h, body: []byte(m.text())}}, nil
		},
	}, nil
}

// ntfyPriority reads 1 to 5 or min, low, default, high, max/urgent.
func ntfyPriority(v string) (int, error) {
	switch strings.ToLower(v) {
	case "1", "min":
		return 1, nil
	case "2", "low":
		return 2, nil
	case "3", "default":
		return 3, nil
	case "4", "high":
		return 4, nil
	case "5", "max", "urgent":
		return 5, nil
	}
	return 0, errors.New("priority must be 1 to 5, or min, low, default, high, max or urgent")
}

// parseTelegram reads telegram://TOKEN@telegram?chats=@channel,12345[&preview=no&notification=no].
func parseTelegram(u *url.URL, q url.Values) (*target, error) {
	const svc, form = "telegram", "telegram://bot_id:secret@telegram?chats=@channel,12345"
	if u.User == nil {
		return nil, fmt.Errorf("url: %s: the bot token is missing: write %s", svc, form)
	}
	id := u.User.Username()
	secret, has := u.User.Password()
	if !has || !digits(id, 20) || secret == "" || len(secret) > 128 || !onlyChars(secret, "-_", true) {
		return nil, fmt.Errorf("url: %s: the bot token must be the bot id, ':' and its secret, as BotFather gives it: write %s", svc, form)
	}
	if !strings.EqualFold(u.Host, "telegram") {
		return nil, fmt.Errorf("url: %s: the host must be \"telegram\": write %s", svc, form)
	}
	if err := noPath(svc, form, u); err != nil {
		return nil, err
	}
	p, err := readParams(svc, q, map[string]string{"chats": "chats", "channels": "chats", "preview": "preview", "notification": "notification"})
	if err != nil {
		return nil, err
	}
	list, ok := p["chats"]
	if !ok || list == "" {
		return nil, fmt.Errorf("url: %s: chats is required: write %s", svc, form)
	}
	var chats []string
	for i, c := range strings.Split(list, ",") {
		c, ok := telegramChat(strings.TrimSpace(c))
		if !ok {
			return nil, fmt.Errorf("url: %s: chats entry %d is neither a chat id (a number) nor a channel (@name)", svc, i+1)
		}
		if slices.Contains(chats, c) {
			return nil, fmt.Errorf("url: %s: chats entry %d is there twice", svc, i+1)
		}
		chats = append(chats, c)
	}
	if len(chats) > maxTelegramChats {
		return nil, fmt.Errorf("url: %s: at most %d chats", svc, maxTelegramChats)
	}
	extra := map[string]any{}
	if v, ok := p["preview"]; ok {
		on, err := parseBool(svc, "preview", v)
		if err != nil {
			return nil, err
		}
		if !on {
			extra["link_preview_options"] = map[string]any{"is_disabled": true}
		}
	}
	if v, ok := p["notification"]; ok {
		on, err := parseBool(svc, "notification", v)
		if err != nil {
			return nil, err
		}
		if !on {
			extra["disable_notification"] = true
		}
	}
	token := id + ":" + secret
	path := "/bot" + token + "/sendMessage"
	return &target{
		service: svc,
		base:    origin(telegramAPI),
		secrets: []string{token, secret},
		build: func(m message) ([]request, error) {
			reqs := make([]request, 0, len(chats))
			for _, c := range chats {
				body := map[string]any{"text": m.text()}
				for k, v := range extra {
					body[k] = v
				}
				if c[0] == '@' {
					body["chat_id"] = c
				} else {
					body["chat_id"] = json.Number(c) // canonical: telegramChat parsed it
				}
				r, err := jsonRequest("chat "+c, path, "", jsonHeader(), body)
				if err != nil {
					return nil, err
				}
				reqs = append(reqs, r...)
			}
			return reqs, nil
		},
	}, nil
}

// telegramChat reads a chat: a chat id (an integer, returned in its
// canonical form) or a public channel or group (@name).
func telegramChat(c string) (string, bool) {
	if name, ok := strings.CutPrefix(c, "@"); ok {
		return c, name != "" && len(name) <= 64 && onlyChars(name, "_", true)
	}
	if !digits(strings.TrimPrefix(c, "-"), 20) {
		return "", false
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// parseGotify reads gotify://host[:port][/path]/TOKEN[?priority=…&disabletls=yes].
func parseGotify(u *url.URL, q url.Values) (*target, error) {
	const svc, form = "gotify", "gotify://host[:port][/path]/token"
	if u.Hostname() == "" {
		return nil, fmt.Errorf("url: %s: the server is missing: write %s", svc, form)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return nil, fmt.Errorf("url: %s: the application token is missing: write %s", svc, form)
	}
	prefix := path[:i]
	token, err := url.PathUnescape(path[i+1:])
	if err != nil || token == "" || len(token) > 256 || !onlyChars(token, "-_.", true) {
		return nil, fmt.Errorf("url: %s: the application token (the last path segment) must be letters, digits, '-', '_' and '.': write %s", svc, form)
	}
	p, err := readParams(svc, q, map[string]string{"priority": "priority", "disabletls": "disabletls"})
	if err != nil {
		return nil, err
	}
	priority := 5
	if v, ok := p["priority"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10 {
			return nil, fmt.Errorf("url: %s: priority must be a number from 0 to 10", svc)
		}
		priority = n
	}
	scheme := "https"
	if v, ok := p["disabletls"]; ok {
		off, err := parseBool(svc, "disabletls", v)
		if err != nil {
			return nil, err
		}
		if off {
			scheme = "http"
		}
	}
	return &target{
		service: svc,
		base:    &url.URL{Scheme: scheme, Host: u.Host},
		secrets: []string{token},
		build: func(m message) ([]request, error) {
			text := m.body()
			if text == "" {
				text = m.headline // gotify needs a message
			}
			h := jsonHeader()
			h.Set("X-Gotify-Key", token)
			return jsonRequest("", prefix+"/message", "", h, map[string]any{"title": m.headline, "message": text, "priority": priority})
		},
	}, nil
}

// parseGeneric reads generic+https://[user:password@]host[:port]/path?…,
// generic+http://… and generic://… (https unless disabletls=yes).
// Parameters: titlekey, messagekey, template=json, disabletls (generic://
// only), @Header=value for request headers, $field=value for extra JSON
// fields; every other parameter stays in the query sent.
func parseGeneric(scheme string, u *url.URL, q url.Values) (*target, error) {
	const svc, form = "generic", "generic+https://host[:port]/path"
	if u.Hostname() == "" {
		return nil, fmt.Errorf("url: %s: the host is missing: write %s", svc, form)
	}
	t := &target{service: svc}
	header := jsonHeader()
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		header.Set("Authorization", "Basic "+cred)
		t.secrets = append(t.secrets, cred)
		if pass != "" {
			t.secrets = append(t.secrets, pass)
		}
		if len(user) >= 8 { // a token passed as the user name
			t.secrets = append(t.secrets, user)
		}
	}
	titleKey, messageKey := "title", "message"
	extra := map[string]string{}
	forward := url.Values{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	httpScheme := strings.TrimPrefix(scheme, "generic+")
	if scheme == "generic" {
		httpScheme = "https"
	}
	for _, k := range keys {
		vals := q[k]
		one := func() (string, error) {
			if len(vals) > 1 {
				return "", fmt.Errorf("url: %s: query parameter %s is given more than once", svc, paramName(k))
			}
			return vals[0], nil
		}
		switch lk := strings.ToLower(k); {
		case strings.HasPrefix(k, "@"):
			v, err := one()
			if err != nil {
				return nil, err
			}
			name := http.CanonicalHeaderKey(k[1:])
			if err := checkHeader(name, v); err != nil {
				return nil, fmt.Errorf("url: %s: %w", svc, err)
			}
			if header.Get(name) != "" {
				return nil, fmt.Errorf("url: %s: header %q is set twice (by user info or another parameter)", svc, name)
			}
			header.Set(name, v)
			if len(v) >= 8 {
				t.secrets = append(t.secrets, v)
			}
		case strings.HasPrefix(k, "$"):
			v, err := one()
			if err != nil {
				return nil, err
			}
			name := k[1:]
			if name == "" || len(name) > 64 {
				return nil, fmt.Errorf("url: %s: an extra field ($name=value) needs a name of 1 to 64 bytes", svc)
			}
			if len(extra) >= maxGenericFields {
				return nil, fmt.Errorf("url: %s: at most %d extra fields", svc, maxGenericFields)
			}
			extra[name] = v
			if len(v) >= 8 {
				t.secrets = append(t.secrets, v)
			}
		case lk == "titlekey" || lk == "messagekey":
			v, err := one()
			if err != nil {
				return nil, err
			}
			if v == "" || len(v) > 64 {
				return nil, fmt.Errorf("url: %s: %s must be 1 to 64 bytes", svc, lk)
			}
			if lk == "titlekey" {
				titleKey = v
			} else {
				messageKey = v
			}
		case lk == "template":
			v, err := one()
			if err != nil {
				return nil, err
			}
			if !strings.EqualFold(v, "json") {
				return nil, fmt.Errorf("url: %s: only template=json is supported (the body is always JSON)", svc)
			}
		case lk == "disabletls":
			v, err := one()
			if err != nil {
				return nil, err
			}
			if scheme != "generic" {
				return nil, fmt.Errorf("url: %s: disabletls goes only with generic://; %s:// already says which protocol to use", svc, scheme)
			}
			off, err := parseBool(svc, "disabletls", v)
			if err != nil {
				return nil, err
			}
			if off {
				httpScheme = "http"
			}
		case lk == "title" || lk == "contenttype" || lk == "method":
			return nil, fmt.Errorf("url: %s: query parameter %s is not supported: the plugin always POSTs JSON with the event's own title", svc, paramName(k))
		default:
			forward[k] = vals
			for _, v := range vals {
				if len(v) >= 8 {
					t.secrets = append(t.secrets, v)
				}
			}
		}
	}
	if titleKey == messageKey {
		return nil, fmt.Errorf("url: %s: titlekey and messagekey must differ", svc)
	}
	for name := range extra {
		if name == titleKey || name == messageKey {
			return nil, fmt.Errorf("url: %s: extra field %s would overwrite the title or the message", svc, paramName(name))
		}
	}
	t.base = &url.URL{Scheme: httpScheme, Host: u.Host}
	path, query := u.EscapedPath(), forward.Encode()
	t.build = func(m message) ([]request, error) {
		body := map[string]any{titleKey: m.headline, messageKey: m.text()}
		for k, v := range extra {
			body[k] = v
		}
		return jsonRequest("", path, query, header.Clone(), body)
	}
	return t, nil
}

// checkHeader checks a header a generic URL sets: a name of at most 64
// bytes and what outbound.CheckHeader checks. Its errors show the name
// when it is a valid one, never the value.
func checkHeader(name, value string) error {
	if len(name) > 64 || !outbound.ValidHeaderName(name) {
		return errors.New("a header parameter (@Name=value) needs a valid header name")
	}
	err := outbound.CheckHeader(name, value, func(canon string) string {
		if outbound.ReservedHeader(canon) {
			return "the plugin and its HTTP client set it"
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	return nil
}
