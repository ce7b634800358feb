package events

import (
	"bytes"
	"encoding/json"

	"github.com/wisehosting/wisehosting/sdk/hostname"
)

// withAppURL returns data with "url": "https://<subdomain>.<domain>" added
// when it names the app's subdomain but no url, so every sink and webhook
// can link to the app. Data it cannot read, a subdomain that is not a
// valid label, or an empty domain leave it as it is.
func withAppURL(data json.RawMessage, domain string) json.RawMessage {
	if domain == "" || !bytes.Contains(data, []byte(`"subdomain"`)) {
		return data
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return data
	}
	if _, ok := m["url"]; ok {
		return data
	}
	var sub string
	if err := json.Unmarshal(m["subdomain"], &sub); err != nil || sub == "" {
		return data
	}
	host := sub + "." + domain
	if hostname.ValidLabel(sub) != nil || hostname.Valid(host) != nil {
		return data
	}
	m["url"], _ = json.Marshal("https://" + host)
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}
